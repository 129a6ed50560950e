"""The "direct" deploy interface: the agent streams the image onto the node's disk itself.

Deploy steps, in Ironic's order (priority): deploy (100) boots the agent; write_image (80) has the
agent write the image and the configdrive; prepare_instance_boot (60) makes the node boot from
disk, persistently; tear_down_agent (40) powers the agent off; switch_to_tenant_network (30);
boot_instance (20) powers the node on. The node waits in "wait call-back" while the agent works;
its heartbeats and step results (``heartbeat`` / ``step_result`` hooks) move it on.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from oslo_log import log as logging

from agent.common import checksums, exception, row_dicts, states
from agent.common.config import CONF
from agent.common.utils import is_http_url
from agent.conductor import agent_boot, agent_commands, cleaning, deployments, rescue, servicing
from agent.conductor.drivers import base

LOG = logging.getLogger(__name__)

IMAGE_SCHEMES = ("http", "https")
DISK_FORMATS = ("raw", "qcow2")


def image_checksum(node: Any) -> tuple[str | None, str]:
    """Return (algorithm, hex digest) of the node's image from instance_info; raise naming what is wrong.

    image_os_hash_algo + image_os_hash_value win; else image_checksum, either "<algo>:<hex>" or a bare
    hex digest whose length names the algorithm (else [deploy]default_image_checksum_algo), or the
    http(s) URL of a checksum file, returned as (image_os_hash_algo or None, URL) for the agent to read.
    """
    info = node.instance_info or {}
    value = info.get("image_os_hash_value")
    legacy = info.get("image_checksum")
    where = "instance_info image_os_hash_value" if value else "instance_info image_checksum"
    if not value and is_http_url(legacy):
        algo = info.get("image_os_hash_algo")
        if algo is not None and str(algo).lower() not in checksums.ALGOS:
            raise exception.InvalidParameterValue(
                err=f'Node {node.uuid}: instance_info image_os_hash_algo "{algo}" is not one of '
                f"{', '.join(checksums.ALGOS)}."
            )
        return (str(algo).lower() if algo else None), str(legacy).strip()
    if not value and not legacy:
        raise exception.MissingParameterValue(
            err=f"Node {node.uuid}: instance_info needs image_checksum (or image_os_hash_algo and "
            "image_os_hash_value) so the agent can verify the image it writes."
        )
    try:
        return checksums.parse_checksum(
            info.get("image_os_hash_algo"), value, legacy, CONF.deploy.default_image_checksum_algo
        )
    except checksums.ChecksumError as exc:
        raise exception.InvalidParameterValue(err=f"Node {node.uuid}: {where}: {exc}.") from exc


def write_image_args(node: Any) -> dict[str, Any]:
    """The agent's write_image arguments, from the node's instance_info (validated)."""
    info = node.instance_info or {}
    source = info.get("image_source")
    if not source:
        raise exception.MissingParameterValue(
            err=f"Node {node.uuid}: instance_info image_source is required for the direct deploy "
            "(an http:// or https:// URL of the image)."
        )
    scheme = urllib.parse.urlsplit(str(source)).scheme
    if scheme not in IMAGE_SCHEMES:
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid}: instance_info image_source {source!r} must be an http:// or https:// "
            "URL; the agent downloads the image itself."
        )
    disk_format = info.get("image_disk_format") or "raw"
    if disk_format not in DISK_FORMATS:
        raise exception.InvalidParameterValue(
            err=f'Node {node.uuid}: instance_info image_disk_format "{disk_format}" is not supported; '
            f"use one of {', '.join(DISK_FORMATS)}."
        )
    hints = info.get("root_device") or (node.properties or {}).get("root_device")
    if hints is not None and not isinstance(hints, dict):
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid}: root_device hints must be an object such as "
            f'{{"size": ">= 100"}}, got {hints!r}.'
        )
    algo, value = image_checksum(node)
    return {
        "image_source": str(source),
        "image_checksum": value,
        "image_os_hash_algo": algo,
        "image_os_hash_value": None if is_http_url(value) else value,
        "image_disk_format": disk_format,
        "root_device": hints,
    }


def configdrive_args(task, root_device: str | None) -> dict[str, Any] | None:
    """The agent's write_configdrive arguments, or None when the node has no configdrive to write."""
    drive = (task.node.instance_info or {}).get("configdrive")
    if not drive:
        return None
    if isinstance(drive, dict):
        drive = _expand_configdrive(task, drive)
    elif not isinstance(drive, str):
        raise exception.InvalidParameterValue(
            err=f"Node {task.node.uuid}: instance_info configdrive must be a gzipped base64 ISO string or "
            f"an object with meta_data, network_data and user_data; got {type(drive).__name__}."
        )
    return {"configdrive": drive, "root_device": root_device}


def _expand_configdrive(task, drive: dict[str, Any]) -> dict[str, Any]:
    unknown = set(drive) - {"meta_data", "network_data", "user_data", "vendor_data"}
    if unknown:
        raise exception.InvalidParameterValue(
            err=f"Node {task.node.uuid}: configdrive has unknown keys {', '.join(sorted(unknown))}; "
            "allowed are meta_data, network_data, user_data and vendor_data."
        )
    meta = dict(drive.get("meta_data") or {})
    meta.setdefault("uuid", task.node.instance_uuid or task.node.uuid)
    meta.setdefault("hostname", task.node.name or task.node.uuid)
    network = _network_data(task, drive.get("network_data"))
    user = drive.get("user_data")
    if user is not None and not isinstance(user, str):
        user = json.dumps(user)
    out = {"meta_data": meta, "network_data": network, "user_data": user or ""}
    if drive.get("vendor_data"):
        out["vendor_data"] = drive["vendor_data"]
    return out


def _network_data(task, given: dict[str, Any] | None) -> dict[str, Any]:
    """Nova-format network_data.json: the given one checked against the node's ports, else built from them."""
    given = (
        given
        or (task.node.instance_info or {}).get("network_data")
        or getattr(task.node, "network_data", None)
    )
    from agent.common import network_data

    ports = [row_dicts.port_to_dict(p) for p in task.ports]
    groups = [row_dicts.portgroup_to_dict(pg) for pg in task.portgroups]
    return network_data.build_network_data(ports, given or None, groups)


class DirectDeploy(base.DeployInterface):
    """Deploy through the agent: it writes the image and configdrive; the conductor powers and boots."""

    def get_properties(self) -> dict[str, str]:
        """No driver_info keys of its own; instance_info carries the image."""
        return {}

    def validate(self, task) -> None:
        """Check the image fields of instance_info (when set) and that the boot interface is usable."""
        task.driver.boot.validate(task)
        if (task.node.instance_info or {}).get("image_source"):
            write_image_args(task.node)
            configdrive_args(task, None)

    # --- the deploy steps ---------------------------------------------------------------------

    @base.deploy_step(priority=100)
    def deploy(self, task) -> str | None:
        """Boot the agent (one-time PXE, power cycle) and wait for it to call back."""
        try:
            write_image_args(task.node)
            agent_commands.clear_operation(task)
            agent_boot.boot_agent(task)
        except Exception:
            agent_boot.undo_agent_boot(task)
            raise
        agent_commands.update_internal(task, **{agent_commands.STEP_INDEX_KEY: 1})
        return states.DEPLOYWAIT

    @base.deploy_step(priority=80)
    def write_image(self, task) -> str | None:
        """Have the agent stream the image to the root disk, checksum verified on the way."""
        args = write_image_args(task.node)
        done = agent_commands.start_agent_command(task, "write_image", args, "deploy")
        if done is None:
            return states.DEPLOYWAIT
        return self._after_write(task, "write_image", done)

    @base.deploy_step(priority=60)
    def prepare_instance_boot(self, task) -> None:
        """Make the node boot the instance from its disk, persistently."""
        task.driver.boot.prepare_instance(task)
        task.driver.management.set_boot_device(task, base.DISK, persistent=True)

    @base.deploy_step(priority=40)
    def tear_down_agent(self, task) -> None:
        """Power the agent off and remove its ramdisk boot config."""
        agent_boot.power_off(task)
        task.driver.boot.clean_up_ramdisk(task)

    @base.deploy_step(priority=30)
    def switch_to_tenant_network(self, task) -> None:
        """Move the node's ports from the provisioning network to its tenant networks."""
        task.driver.network.remove_provisioning_network(task)
        task.driver.network.configure_tenant_networks(task)

    @base.deploy_step(priority=20)
    def boot_instance(self, task) -> None:
        """Power the node on into the deployed instance."""
        agent_boot.power_on(task)

    def after_agent_step(self, task, current: dict[str, Any], step: str) -> str | None:
        """An agent command of deploy step ``current`` succeeded: write the configdrive next, if any."""
        if step == "write_image" and current.get("step") == "write_image":
            return self._configdrive(task)
        return None

    def _after_write(self, task, step: str, result: dict[str, Any]) -> str | None:
        error = agent_commands.result_error(step, result)
        if error is not None:
            raise exception.AgentCommandFailed(command=step, node=task.node.uuid, error=error)
        agent_commands.record_result(task, step, result)
        if step == "write_image":
            return self._configdrive(task)
        return None

    def _configdrive(self, task) -> str | None:
        root = (agent_commands.step_results(task).get("write_image") or {}).get("root_device")
        args = configdrive_args(task, root)
        if args is None:
            return None
        done = agent_commands.start_agent_command(task, "write_configdrive", args, "deploy")
        if done is None:
            return states.DEPLOYWAIT
        return self._after_write(task, "write_configdrive", done)

    # --- the rest of the interface ---------------------------------------------------------------

    def prepare(self, task) -> None:
        """Power off and put the node on the provisioning network before the agent boots."""
        try:
            agent_boot.power_off(task)
            task.driver.network.unconfigure_tenant_networks(task)
            task.driver.network.add_provisioning_network(task)
        except Exception:
            agent_boot.undo_agent_boot(task)
            raise

    def tear_down(self, task) -> str:
        """Power the instance off and take it off its tenant networks."""
        agent_boot.power_off(task)
        task.driver.network.unconfigure_tenant_networks(task)
        return states.DELETED

    def clean_up(self, task) -> None:
        """Remove boot files and every trace of the deployment in driver_internal_info."""
        task.driver.boot.clean_up_ramdisk(task)
        task.driver.boot.clean_up_instance(task)
        agent_commands.clear_operation(task)

    # --- cleaning through the agent ---------------------------------------------------------------

    def prepare_cleaning(self, task) -> str:
        """Boot the agent on the cleaning network; cleaning waits for it in "clean wait"."""
        agent_boot.boot_agent_on(task, task.driver.network.add_cleaning_network)
        return states.CLEANWAIT

    def tear_down_cleaning(self, task) -> None:
        """Power the agent off, remove its boot config and leave the cleaning network."""
        agent_boot.power_off(task)
        task.driver.boot.clean_up_ramdisk(task)
        task.driver.network.remove_cleaning_network(task)

    # --- hooks called by the agent endpoints --------------------------------------------------

    def heartbeat(self, task, status: dict[str, Any]) -> None:
        """The agent is alive: start the next step when none is running."""
        state = task.node.provision_state
        if agent_commands.pending_command(task) is not None:
            self._poll_pending(task)
            return
        if state == states.DEPLOYWAIT:
            index = int(agent_commands.internal(task).get(agent_commands.STEP_INDEX_KEY) or 0)
            if index < 1:
                LOG.warning("Node %s heartbeats in wait call-back before its deploy began", task.node.uuid)
                return
            deployments.continue_deploy(task)
        elif state == states.CLEANWAIT:
            cleaning.continue_cleaning(task)
        elif state == states.SERVICEWAIT:
            servicing.continue_service(task)
        elif state == states.RESCUEWAIT:
            rescue.finalize(task)

    def _poll_pending(self, task) -> None:
        """Ask the agent how the pending step went, in case its step_result cast was lost."""
        command = agent_commands.pending_command(task) or {}
        if not command.get("command_id"):
            return
        try:
            status = agent_commands.agent_client().get_step_status(
                {}, task.node.uuid, agent_commands.agent_token(task), command["command_id"]
            )
        except Exception as exc:  # noqa: BLE001 - the step_result may still come; retry next heartbeat
            LOG.warning("Node %s: polling step %s failed: %s", task.node.uuid, command.get("step"), exc)
            return
        if isinstance(status, dict) and status.get("status") in (
            agent_commands.SUCCEEDED,
            agent_commands.FAILED,
        ):
            LOG.info(
                "Node %s: step %s ended (%s), found by polling",
                task.node.uuid,
                command["step"],
                status["status"],
            )
            self.step_result(task, command["step"], {**status, "command_id": command["command_id"]})

    def step_result(self, task, step: str, result: dict[str, Any]) -> None:
        """An agent step ended: go on with the deployment, cleaning, servicing or rescue, or fail it."""
        state = task.node.provision_state
        if state not in _STEP_RESULT_HOOKS:
            LOG.warning("Node %s: step_result for %s ignored in state %s", task.node.uuid, step, state)
            return
        command = agent_commands.accept_result(task, step, result)
        if command is None:
            return
        _STEP_RESULT_HOOKS[state](task, step, result)


_STEP_RESULT_HOOKS = {
    states.DEPLOYWAIT: deployments.finish_agent_deploy_step,
    states.CLEANWAIT: cleaning.finish_agent_clean_step,
    states.SERVICEWAIT: servicing.finish_agent_service_step,
    states.RESCUEWAIT: lambda task, _step, result: rescue.finish_finalize(task, result),
}
