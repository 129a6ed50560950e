"""The conductor's RPC methods for agents: lookup, report_inventory, heartbeat, step_result.

``lookup`` finds (or, with discovery on, enrolls) the node and hands out its agent token once;
only a sha256 of the token is stored. Every other method checks the token first: a missing or
wrong one is logged, nothing is stored, and the agent gets InvalidAgentToken.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import secrets
from typing import Any

import oslo_messaging as messaging
from oslo_log import log as logging
from oslo_utils import uuidutils

from agent.common import exception, rpc
from agent.common.config import CONF
from agent.common.opts import conductor as conductor_opts
from agent.conductor import states, task_manager
from agent.conductor import traits as traits_mod
from agent.conductor.drivers import driver_factory
from agent.db import api as db_api
from agent.inventory.schema import validate_inventory

conductor_opts.register(CONF)
LOG = logging.getLogger(__name__)

#: The node's fault while its agent is silent longer than [conductor]agent_heartbeat_timeout.
HEARTBEAT_FAULT = "agent heartbeat timeout"
#: Provision states in which heartbeats drive the deploy interface (deploy, clean, inspect).
HEARTBEAT_HOOK_STATES = frozenset((states.DEPLOYWAIT, states.CLEANWAIT, states.INSPECTWAIT))
#: driver_internal_info keys Kiln keeps about the agent.
INFO_DISCOVERED = "discovered"
INFO_KILN_TRAITS = "kiln_traits"
_MAX_ERRORS_SHOWN = 10
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,254}$")


def hash_token(token: str) -> str:
    """The stored form of an agent token: its sha256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _macs(values: Any) -> list[str]:
    """Valid, normalized MACs of ``values`` (others are dropped), in order, without duplicates."""
    found: list[str] = []
    for value in values or []:
        try:
            mac = db_api.normalize_mac(value)
        except exception.InvalidParameterValue:
            continue
        if mac not in found and mac not in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"):
            found.append(mac)
    return found


def _bootif(value: Any) -> str | None:
    """A BOOTIF MAC as PXE passes it ("01-aa-bb-..") or plain; None when it is no MAC."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().lower()
    if re.fullmatch(r"01-([0-9a-f]{2}-){5}[0-9a-f]{2}", text):
        text = text[3:].replace("-", ":")
    found = _macs([text])
    return found[0] if found else None


def _inventory_macs(inventory: dict) -> list[str]:
    """MACs of the node's physical NICs (PCI functions, not VFs) in the inventory."""
    nics = [n for n in inventory.get("nics") or [] if isinstance(n, dict)]
    return _macs(
        n.get("mac_address") for n in nics if n.get("pci_address") and not n.get("is_virtual_function")
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class AgentEndpoints:
    """Mixin of ConductorManager: the RPC methods kiln-agent calls."""

    host: str

    # --- helpers --------------------------------------------------------------------------------

    def _acquire(self, ctxt: dict, node_uuid: str, purpose: str, **kwargs: Any) -> task_manager.TaskManager:
        return task_manager.acquire(ctxt, node_uuid, purpose=purpose, host=self.host, **kwargs)

    def _authenticate(self, node_uuid: Any, agent_token: Any, what: str) -> Any:
        """The node ``node_uuid`` if ``agent_token`` is its token; else log and raise InvalidAgentToken."""
        node = None
        if isinstance(node_uuid, str) and uuidutils.is_uuid_like(node_uuid):
            try:
                node = db_api.get_node(node_uuid)
            except exception.NodeNotFound:
                node = None
        if node is None:
            LOG.warning(
                "Rejected %s for unknown node %r: no such node, so no valid agent token", what, node_uuid
            )
            raise exception.InvalidAgentToken(node=node_uuid)
        if not isinstance(agent_token, str) or not agent_token:
            LOG.warning("Rejected %s from node %s: the agent sent no token", what, node.uuid)
            raise exception.InvalidAgentToken(node=node.uuid)
        if not node.agent_token_hash or not hmac.compare_digest(
            node.agent_token_hash, hash_token(agent_token)
        ):
            LOG.warning("Rejected %s from node %s: wrong agent token", what, node.uuid)
            raise exception.InvalidAgentToken(node=node.uuid)
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
        boot_mac = _bootif(bootif)
        all_macs = _macs([*(macs or []), *([boot_mac] if boot_mac else [])])
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
        if not node.agent_token_hash:
            with self._acquire(ctxt, node.uuid, "agent token", load_driver=False) as task:
                if not task.node.agent_token_hash:
                    token = secrets.token_urlsafe(32)
                    values: dict[str, Any] = {"agent_token_hash": hash_token(token)}
                    if sys_uuid and not task.node.system_uuid:
                        values["system_uuid"] = sys_uuid
                    task.update_node(values)
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

    # --- inventory ------------------------------------------------------------------------------

    def report_inventory(
        self, ctxt: dict, node_uuid: str, agent_token: str, inventory: dict, changes: dict | None = None
    ) -> dict:
        """Validate and store the node's inventory; update its properties, traits, name and ports.

        Returns {"stored": True, "traits": the node's traits}.
        """
        node = self._authenticate(node_uuid, agent_token, "report_inventory")
        errors = validate_inventory(inventory, "json")
        if errors:
            shown = "; ".join(errors[:_MAX_ERRORS_SHOWN])
            more = f" (and {len(errors) - _MAX_ERRORS_SHOWN} more)" if len(errors) > _MAX_ERRORS_SHOWN else ""
            LOG.warning("Node %s sent an invalid inventory: %s%s", node.uuid, shown, more)
            raise exception.InventoryInvalid(node=node.uuid, reason=shown + more)
        if changes is not None and not isinstance(changes, dict):
            raise exception.InventoryInvalid(
                node=node.uuid, reason=f"changes must be an object, not {changes!r}"
            )
        with self._acquire(ctxt, node.uuid, "inventory report", load_driver=False) as task:
            db_api.set_node_inventory(task.node.id, inventory, changes)
            self._apply_inventory(task, inventory)
            if task.node.provision_state == states.INSPECTWAIT:
                task.driver = driver_factory.build_driver_for_task(task)
                task.driver.inspect.inventory_received(task, inventory)
            found = list(task.node.traits)
        LOG.info(
            "Stored the inventory of node %s (%s)", node.uuid, "with changes" if changes else "full report"
        )
        return {"stored": True, "traits": found}

    def _apply_inventory(self, task: task_manager.TaskManager, inventory: dict) -> None:
        node = task.node
        derived = traits_mod.derive_properties(inventory)
        props = dict(node.properties or {})
        if "capabilities" in derived:
            derived["capabilities"] = traits_mod.merge_capabilities(
                props.get("capabilities"), derived["capabilities"]
            )
        props.update(derived)
        internal = dict(node.driver_internal_info or {})
        new_traits = traits_mod.derive_traits(inventory)
        merged = traits_mod.merge_traits(node.traits, new_traits, internal.get(INFO_KILN_TRAITS) or [])
        internal[INFO_KILN_TRAITS] = new_traits
        values: dict[str, Any] = {"properties": props, "driver_internal_info": internal}
        name = self._free_name(node, inventory)
        if name:
            values["name"] = name
        task.update_node(values)
        if sorted(node.traits) != merged:
            db_api.set_node_traits(node.id, merged)
            task.refresh()
        self._enroll_new_ports(task, inventory)

    @staticmethod
    def _free_name(node: Any, inventory: dict) -> str | None:
        """The inventory's hostname when a discovered, unnamed node can take it (no other node has it)."""
        if node.name or not (node.driver_internal_info or {}).get(INFO_DISCOVERED):
            return None
        system = inventory.get("system") if isinstance(inventory.get("system"), dict) else {}
        hostname = system.get("hostname")
        if not isinstance(hostname, str) or not _NAME_RE.match(hostname) or uuidutils.is_uuid_like(hostname):
            return None
        try:
            db_api.get_node(hostname)
        except exception.NodeNotFound:
            return hostname
        LOG.info("Node %s: hostname %s is already another node's name; left unnamed", node.uuid, hostname)
        return None

    @staticmethod
    def _enroll_new_ports(task: task_manager.TaskManager, inventory: dict) -> None:
        known = {p.address for p in task.ports}
        system = inventory.get("system") if isinstance(inventory.get("system"), dict) else {}
        pxe_mac = _bootif(system.get("pxe_interface"))
        for mac in _inventory_macs(inventory):
            if mac in known:
                continue
            try:
                db_api.create_port({"address": mac, "node_id": task.node.id, "pxe_enabled": mac == pxe_mac})
            except exception.MACAlreadyExists:
                owner = db_api.get_port_by_address(mac).node_id
                LOG.warning(
                    "Node %s reports NIC %s, which is a port of another node (id %s); not enrolled",
                    task.node.uuid,
                    mac,
                    owner,
                )
                continue
            LOG.info("Node %s: enrolled port %s", task.node.uuid, mac)
        task.refresh()

    # --- heartbeat and steps ----------------------------------------------------------------------

    def heartbeat(self, ctxt: dict, node_uuid: str, agent_token: str, status: dict) -> None:
        """Record that the node's agent is alive; clear a heartbeat fault; drive the deploy hook."""
        node = self._authenticate(node_uuid, agent_token, "heartbeat")
        db_api.record_agent_heartbeat(node.id)
        if node.fault != HEARTBEAT_FAULT and node.provision_state not in HEARTBEAT_HOOK_STATES:
            return
        try:
            with self._acquire(ctxt, node.uuid, "agent heartbeat", load_driver=False) as task:
                if task.node.fault == HEARTBEAT_FAULT:
                    values: dict[str, Any] = {"fault": None}
                    if (task.node.last_error or "").startswith(_heartbeat_error_prefix(node.uuid)):
                        values["last_error"] = None
                    task.update_node(values)
                    LOG.info("Node %s: the agent heartbeats again; fault cleared", node.uuid)
                if task.node.provision_state in HEARTBEAT_HOOK_STATES:
                    task.driver = driver_factory.build_driver_for_task(task)
                    task.agent_token = agent_token  # verified above; the hooks send it to the agent
                    task.driver.deploy.heartbeat(task, status if isinstance(status, dict) else {})
        except exception.NodeLocked as exc:
            LOG.info("Heartbeat of node %s recorded; its handling waits for the next one: %s", node.uuid, exc)

    def step_result(self, ctxt: dict, node_uuid: str, agent_token: str, step: str, result: dict) -> None:
        """Hand the result of an agent step to the node's deploy interface."""
        node = self._authenticate(node_uuid, agent_token, "step_result")
        if not isinstance(step, str) or not step or not isinstance(result, dict):
            raise exception.InvalidParameterValue(
                err=f"step_result from node {node.uuid} needs a step name and a result object; "
                f"got step={step!r}, result={result!r}."
            )
        with self._acquire(ctxt, node.uuid, f"agent step {step} result") as task:
            LOG.info("Node %s: step %s %s", node.uuid, step, result.get("status"))
            task.agent_token = agent_token  # verified above; the hooks send it to the agent
            task.driver.deploy.step_result(task, step, result)


def _heartbeat_error_prefix(node_uuid: str) -> str:
    return f"The agent of node {node_uuid} has not sent a heartbeat"


def heartbeat_error(node_uuid: str, timeout_s: int, last: datetime.datetime | None) -> str:
    """The last_error of a node flagged for missing heartbeats."""
    when = last.isoformat() if last is not None else "never"
    return (
        f"{_heartbeat_error_prefix(node_uuid)} for more than {timeout_s} s (last: {when}); "
        "check that kiln-agent runs on the node and reaches the message bus."
    )


def _mark_expected(cls: type) -> type:
    """Kiln's own errors go back to the agent without a server-side traceback in the log."""
    for name in ("lookup", "report_inventory", "heartbeat", "step_result"):
        setattr(cls, name, messaging.expected_exceptions(exception.KilnException)(getattr(cls, name)))
    return cls


_mark_expected(AgentEndpoints)
