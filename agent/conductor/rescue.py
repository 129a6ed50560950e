"""Rescue and unrescue of an active node (API 1.38): the agent ramdisk with a password, and back.

rescue: the password is hashed at once (crypt(3) sha256-crypt or sha512-crypt, per
[conductor]rescue_password_hash_algorithm, as Ironic does) and only the hash is kept, in
instance_info ``hashed_rescue_password`` (the API masks it). The instance is powered off and taken
off its tenant networks, and the agent boots on the rescuing network ("rescue wait"). On its first
heartbeat the conductor sends ``finalize_rescue`` with the hash; the agent writes it into its
/etc/shadow for user ``rescue``. The ramdisk boot config is then removed, the node moved from the
rescuing network back to its tenant networks (so its owner can reach it, as in Ironic) and it is
"rescue", the agent still running.

unrescue powers the ramdisk off and boots the instance from its disk again ("active"). Failures go
to "rescue failed" / "unrescue failed"; a rescue that never calls back fails at
[conductor]rescue_callback_timeout. The password itself is never stored, logged or sent anywhere.
"""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging
from passlib.hash import sha256_crypt, sha512_crypt

from agent.common import exception
from agent.common.config import CONF
from agent.common.utils import error_text
from agent.conductor import agent_boot, agent_commands, failures
from agent.conductor.drivers import base

LOG = logging.getLogger(__name__)

HASH_KEY = "hashed_rescue_password"
"""instance_info key of the rescue password's crypt(3) hash (Ironic's name)."""
FINALIZE_STEP = "finalize_rescue"
_SCHEMES = {"sha256": sha256_crypt, "sha512": sha512_crypt}
# crypt(3)'s default round count: the hash reads "$5$salt$..." / "$6$salt$..." as glibc writes it.
_ROUNDS = 5000


def hash_password(password: str, algorithm: str | None = None) -> str:
    """The crypt(3) hash of ``password`` with ``algorithm`` (sha256 or sha512; default from the option)."""
    name = algorithm or CONF.conductor.rescue_password_hash_algorithm
    scheme = _SCHEMES.get(name)
    if scheme is None:
        raise exception.InvalidParameterValue(
            err=f'rescue password hash algorithm "{name}" is not one of {", ".join(sorted(_SCHEMES))}.'
        )
    return scheme.using(rounds=_ROUNDS).hash(password)


def _can_boot_agent(task) -> bool:
    return hasattr(task.driver.deploy, "prepare_cleaning")


def start_rescue(task, rescue_password: Any) -> None:
    """Keep the hash of ``rescue_password`` and start booting the rescue ramdisk in a worker thread."""
    node = task.node
    if not isinstance(rescue_password, str) or not rescue_password.strip():
        raise exception.MissingParameterValue(
            err=f'Node {node.uuid}: "rescue_password" (a non-empty string) is required to rescue it.'
        )
    if not _can_boot_agent(task):
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid}: deploy interface {node.deploy_interface} cannot boot the agent "
            "ramdisk, so the node cannot be rescued; use deploy interface direct."
        )
    info = dict(node.instance_info or {})
    info[HASH_KEY] = hash_password(rescue_password)
    info.pop("rescue_password", None)
    task.update_node({"instance_info": info})
    task.process_event("rescue", callback=do_rescue, call_args=(task,))


def do_rescue(task) -> None:
    """Boot the agent ramdisk in place of the instance (in "rescuing"), then wait for it."""
    try:
        agent_commands.clear_operation(task)
        agent_boot.power_off(task)
        task.driver.network.unconfigure_tenant_networks(task)
        agent_boot.boot_agent_on(task, task.driver.network.add_rescuing_network)
    except Exception as exc:  # noqa: BLE001 - any failure fails the rescue with its message
        fail(
            task,
            f"Rescue of node {task.node.uuid} failed while booting the rescue ramdisk: {error_text(exc)}",
        )
        return
    task.process_event("wait")
    LOG.info("Node %s: waiting for the rescue ramdisk", task.node.uuid)


def finalize(task) -> None:
    """The rescue agent heartbeats: have it set the rescue password (``finalize_rescue``)."""
    hashed = (task.node.instance_info or {}).get(HASH_KEY)
    if not hashed:
        fail(
            task, f"Rescue of node {task.node.uuid} failed: no rescue password hash is stored; rescue again."
        )
        return
    try:
        done = agent_commands.start_agent_command(
            task, FINALIZE_STEP, {"rescue_password_hash": hashed}, "rescue"
        )
    except Exception as exc:  # noqa: BLE001
        fail(task, f"Rescue of node {task.node.uuid} failed: {FINALIZE_STEP}: {error_text(exc)}")
        return
    if done is not None:
        finish_finalize(task, done)


def finish_finalize(task, result: dict[str, Any]) -> None:
    """finalize_rescue ended on the agent: the node is rescued, or the rescue fails naming the error."""
    error = agent_commands.result_error(FINALIZE_STEP, result)
    if error is not None:
        fail(task, f"Rescue of node {task.node.uuid} failed: the agent's {FINALIZE_STEP}: {error}")
        return
    task.process_event("resume")
    try:
        task.driver.boot.clean_up_ramdisk(task)
        task.driver.network.remove_rescuing_network(task)
        task.driver.network.configure_tenant_networks(task)
    except Exception as exc:  # noqa: BLE001
        fail(task, f"Rescue of node {task.node.uuid} failed while switching networks: {error_text(exc)}")
        return
    agent_commands.clear_operation(task)
    task.process_event("done")
    LOG.info("Node %s rescued: its agent ramdisk accepts user rescue", task.node.uuid)


def forget_password(task) -> None:
    """Remove the rescue password hash from instance_info."""
    info = dict(task.node.instance_info or {})
    if info.pop(HASH_KEY, None) is not None or info.pop("rescue_password", None) is not None:
        task.update_node({"instance_info": info})


def fail(task, message: str) -> None:
    """Fail the rescue ("rescue failed"): ramdisk powered off and removed, password hash forgotten."""
    forget_password(task)
    failures.fail(task, message)


def abort(task) -> None:
    """Abort a rescue waiting for its ramdisk ("rescue wait" -> "rescue failed")."""
    forget_password(task)
    failures.abort(task)


def start_unrescue(task) -> None:
    """Start booting the rescued node's instance again, in a worker thread."""
    task.process_event("unrescue", callback=do_unrescue, call_args=(task,))


def do_unrescue(task) -> None:
    """Power the ramdisk off and boot the instance from disk on its tenant networks (in "unrescuing")."""
    node = task.node
    forget_password(task)
    try:
        agent_boot.power_off(task)
        task.driver.boot.clean_up_ramdisk(task)
        task.driver.network.remove_rescuing_network(task)
        task.driver.network.configure_tenant_networks(task)
        task.driver.boot.prepare_instance(task)
        task.driver.management.set_boot_device(task, base.DISK, persistent=True)
        agent_boot.power_on(task)
    except Exception as exc:  # noqa: BLE001
        message = f"Unrescue of node {node.uuid} failed: {error_text(exc)}"
        LOG.error("Node %s: %s", node.uuid, message)
        task.refresh()
        task.process_event("fail", last_error=message)
        return
    agent_commands.clear_operation(task)
    task.process_event("done")
    LOG.info("Node %s unrescued; now %s", node.uuid, task.node.provision_state)
