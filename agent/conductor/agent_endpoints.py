"""The conductor's RPC methods for agents: lookup, report_inventory, heartbeat, step_result.

``lookup`` finds (or, with discovery on, enrolls) the node and hands out its agent token once;
only a sha256 of the token is stored (agent.common.tokens). Every other method checks the token
first: a missing or wrong one is logged, nothing is stored, and the agent gets InvalidAgentToken.
The inventory report's work is agent.conductor.inventory_report's, the heartbeat's (its cache,
batched writer and own topic) agent.conductor.heartbeats'.
"""

from __future__ import annotations

import threading
from typing import Any

from oslo_log import log as logging
from oslo_utils import uuidutils

from agent.common import exception, rpc, states, tokens
from agent.common.config import CONF
from agent.common.macs import parse_bootif, valid_macs
from agent.common.tokens import hash_token
from agent.common.utils import expect_kiln_errors
from agent.conductor import inventory_report, task_manager
from agent.conductor.drivers import driver_factory
from agent.conductor.heartbeats import HeartbeatRecorder, handle_heartbeat
from agent.conductor.inventory_report import INFO_DISCOVERED
from agent.db import api as db_api

LOG = logging.getLogger(__name__)

#: Seconds a step result waits for its node's lock (held, often, by the worker that started the step
#: and has not yet let go): woken at once when it is released, so the result is neither lost nor late.
STEP_RESULT_LOCK_TIMEOUT = 60.0

_RECORDER_LOCK = threading.Lock()
# The manager's own attribute (in its __dict__, so that a fork's copy can be dropped).
_RECORDER_KEY = "_kiln_heartbeats"


def set_heartbeat_recorder(manager: AgentEndpoints, recorder: HeartbeatRecorder | None) -> None:
    """Give ``manager`` its heartbeat recorder; None drops it, and the next heartbeat makes a new one.

    A forked heartbeat process drops the one it inherited (its lock may be held by a parent thread).
    """
    # No _RECORDER_LOCK: after a fork it may be held by a thread that does not exist in the child.
    if recorder is None:
        manager.__dict__.pop(_RECORDER_KEY, None)
    else:
        manager.__dict__[_RECORDER_KEY] = recorder


class AgentEndpoints:
    """Mixin of ConductorManager: the RPC methods kiln-agent calls."""

    host: str
    #: Where agents cast heartbeats (handed out by lookup); the service sets it from its topic.
    heartbeat_topic: str = rpc.heartbeat_topic()

    # --- helpers --------------------------------------------------------------------------------

    @property
    def heartbeats(self) -> HeartbeatRecorder:
        """This conductor's heartbeat cache and writer (made on first use)."""
        recorder = self.__dict__.get(_RECORDER_KEY)
        if recorder is None:
            with _RECORDER_LOCK:
                recorder = self.__dict__.setdefault(_RECORDER_KEY, HeartbeatRecorder())
        return recorder

    def flush_heartbeats(self) -> int:
        """Write the agents' pending heartbeats now (before checking for silent nodes, at stop)."""
        return self.heartbeats.flush()

    def stop_heartbeats(self) -> None:
        """Stop the heartbeat writer thread, writing what is pending (the service calls this at stop)."""
        self.heartbeats.stop()

    def _acquire(self, ctxt: dict, node_uuid: str, purpose: str, **kwargs: Any) -> task_manager.TaskManager:
        return task_manager.acquire(ctxt, node_uuid, purpose=purpose, host=self.host, **kwargs)

    def _authenticate(self, node_uuid: Any, agent_token: Any, what: str, light: bool = False) -> Any:
        """The node ``node_uuid`` if ``agent_token`` is its token; else log and raise InvalidAgentToken.

        With ``light``, the node is what get_node_report_state reads (a namespace of its fields), not
        the whole node.
        """
        node = None
        if isinstance(node_uuid, str) and uuidutils.is_uuid_like(node_uuid):
            if light:
                node = inventory_report.report_state(node_uuid)
            else:
                try:
                    node = db_api.get_node(node_uuid)
                except exception.NodeNotFound:
                    node = None
        if node is None:
            LOG.warning(
                "Rejected %s for unknown node %r: no such node, so no valid agent token", what, node_uuid
            )
            raise exception.InvalidAgentToken(node=node_uuid)
        why = tokens.refusal(node.uuid, node.agent_token_hash, agent_token)
        if why is not None:
            LOG.warning("Rejected %s from node %s: %s", what, node.uuid, why)
            raise exception.InvalidAgentToken(node=node.uuid, reason=why)
        return node

    # --- lookup ---------------------------------------------------------------------------------

    def lookup(
        self, ctxt: dict, macs: list[str], system_uuid: str | None = None, bootif: str | None = None
    ) -> dict:
        """Find the node by its MACs, else its system UUID (enrolling it when discovery is on).

        Returns {"node": {uuid, name, provision_state, driver_internal_info}, "agent_token": the token
        the first time (None afterwards), "config": {heartbeat_interval, heartbeat_timeout, agent_topic}}.
        """
        if macs is not None and not isinstance(macs, list | tuple):
            raise exception.InvalidParameterValue(
                err=f"lookup: macs must be a list of MAC addresses, not {macs!r}."
            )
        boot_mac = parse_bootif(bootif)
        all_macs = valid_macs([*(macs or []), *([boot_mac] if boot_mac else [])])
        sys_uuid = (
            system_uuid.lower()
            if isinstance(system_uuid, str) and uuidutils.is_uuid_like(system_uuid)
            else None
        )
        if not all_macs and sys_uuid is None:
            raise exception.InvalidParameterValue(
                err=f"lookup needs at least one valid MAC address or a system UUID; got macs={macs!r}, "
                f"system_uuid={system_uuid!r}, bootif={bootif!r}."
            )
        node = self._find_node(all_macs, sys_uuid)
        if node is None:
            node = self._discover(all_macs, sys_uuid, boot_mac)
        token = None
        self.heartbeats.invalidate([node.uuid])  # an agent that looks up has (re)started: read it afresh
        if not node.agent_token_hash:
            # One attempt, no wait: a task holding the node may be power-cycling it, and a lookup that
            # waited for its end would hand this boot's one token to an agent the task has since
            # killed (the new boot's agent then gets none). Locked: the agent retries after its backoff.
            with self._acquire(ctxt, node.uuid, "agent token", load_driver=False, retry_attempts=1) as task:
                if not task.node.agent_token_hash:
                    token = tokens.new_token(node.uuid)
                    values: dict[str, Any] = {"agent_token_hash": hash_token(token)}
                    if sys_uuid and not task.node.system_uuid:
                        values["system_uuid"] = sys_uuid
                    task.update_node(values)
                    self.heartbeats.invalidate([node.uuid])  # the session hook does too; be explicit
                    LOG.info("Issued the agent token of node %s", node.uuid)
                node = task.node
        return {
            "node": {
                "uuid": node.uuid,
                "name": node.name,
                "provision_state": node.provision_state,
                "driver_internal_info": dict(node.driver_internal_info or {}),
            },
            "agent_token": token,
            "config": {
                "heartbeat_interval": CONF.conductor.agent_heartbeat_interval,
                "heartbeat_timeout": CONF.conductor.agent_heartbeat_timeout,
                "agent_topic": rpc.AGENT_TOPIC,
                "heartbeat_topic": self.heartbeat_topic,
            },
        }

    def _find_node(self, macs: list[str], sys_uuid: str | None) -> Any:
        nodes = db_api.lookup_nodes_by_macs(macs) if macs else []
        if len(nodes) > 1 and sys_uuid:
            nodes = [n for n in nodes if n.system_uuid == sys_uuid] or nodes
        if len(nodes) > 1:
            raise exception.NodeLookupConflict(
                macs=", ".join(macs), uuid=sys_uuid, nodes=", ".join(n.uuid for n in nodes)
            )
        if nodes:
            return nodes[0]
        if sys_uuid:
            try:
                return db_api.get_node_by_system_uuid(sys_uuid)
            except exception.NodeNotFound:
                return None
        return None

    def _discover(self, macs: list[str], sys_uuid: str | None, boot_mac: str | None) -> Any:
        if not CONF.conductor.enable_discovery:
            LOG.warning(
                "Refused lookup of unknown node (MACs %s, system UUID %s): discovery is off", macs, sys_uuid
            )
            raise exception.DiscoveryDisabled(macs=", ".join(macs) or "none", uuid=sys_uuid)
        values: dict[str, Any] = {
            "uuid": uuidutils.generate_uuid(),
            "driver": CONF.conductor.discovery_driver,
            "provision_state": states.ENROLL,
            "system_uuid": sys_uuid,
            "driver_internal_info": {INFO_DISCOVERED: True},
        }
        values.update(driver_factory.check_and_update_node_interfaces(values))
        node = db_api.create_node(values)
        for mac in macs:
            try:
                db_api.create_port(
                    {"address": mac, "node_id": node.id, "pxe_enabled": mac == boot_mac if boot_mac else True}
                )
            except exception.MACAlreadyExists:
                LOG.warning(
                    "Discovered node %s: port %s appeared meanwhile on another node; skipped", node.uuid, mac
                )
        LOG.info(
            "Discovered node %s (system UUID %s, MACs %s), enrolled", node.uuid, sys_uuid, ", ".join(macs)
        )
        return node

    # --- inventory, heartbeat and steps -----------------------------------------------------------

    def report_inventory(
        self, ctxt: dict, node_uuid: str, agent_token: str, inventory: dict, changes: dict | None = None
    ) -> dict:
        """Validate and store the node's inventory; update its properties, traits, name and ports.

        Returns {"stored": True, "traits": the node's traits}.
        """
        # Read fresh (no cache: another process may have stored a newer inventory or changed the
        # traits, and neither may be missed), but only the fields a report needs, in one query.
        node = self._authenticate(node_uuid, agent_token, "report_inventory", light=True)
        return inventory_report.receive_report(ctxt, self.host, node, inventory, changes)

    def heartbeat(self, ctxt: dict, node_uuid: str, agent_token: str, status: dict) -> None:
        """Record that the node's agent is alive; clear a heartbeat fault; drive the deploy hook."""
        handle_heartbeat(ctxt, self.host, self.heartbeats, node_uuid, agent_token, status)

    def step_result(self, ctxt: dict, node_uuid: str, agent_token: str, step: str, result: dict) -> None:
        """Hand the result of an agent step to the node's deploy interface, on a conductor worker."""
        node = self._authenticate(node_uuid, agent_token, "step_result")
        if not isinstance(step, str) or not step or not isinstance(result, dict):
            raise exception.InvalidParameterValue(
                err=f"step_result from node {node.uuid} needs a step name and a result object; "
                f"got step={step!r}, result={result!r}."
            )
        with self._acquire(
            ctxt, node.uuid, f"agent step {step} result", lock_timeout=STEP_RESULT_LOCK_TIMEOUT
        ) as task:
            LOG.info("Node %s: step %s %s", node.uuid, step, result.get("status"))
            task.agent_token = agent_token  # verified above; the hooks send it to the agent
            # The steps that follow run on a conductor worker (lock held), not in this RPC thread.
            task.queue_after(task.driver.deploy.step_result, task, step, result)


expect_kiln_errors(AgentEndpoints, ("lookup", "report_inventory", "heartbeat", "step_result"))
