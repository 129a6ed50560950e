"""The conductor's RPC methods for agents: lookup, report_inventory, heartbeat, step_result.

Heartbeats also have a topic of their own (HeartbeatEndpoint, served with few threads), so that
thousands of them never queue ahead of a lookup, an inventory report or a step result.

``lookup`` finds (or, with discovery on, enrolls) the node and hands out its agent token once;
only a sha256 of the token is stored. Every other method checks the token first: a missing or
wrong one is logged, nothing is stored, and the agent gets InvalidAgentToken.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import types
import weakref
from typing import Any

import oslo_messaging as messaging
from oslo_log import log as logging
from oslo_utils import uuidutils
from sqlalchemy import event
from sqlalchemy.orm import Session

from agent.common import exception, rpc, states
from agent.common.config import CONF
from agent.common.utils import expect_kiln_errors, utcnow
from agent.conductor import task_manager
from agent.conductor import traits as traits_mod
from agent.conductor.drivers import driver_factory
from agent.db import api as db_api
from agent.db import engine as db_engine
from agent.db.models import Node
from agent.inventory import lldp
from agent.inventory.schema import validate_inventory

LOG = logging.getLogger(__name__)

#: The node's fault while its agent is silent longer than [conductor]agent_heartbeat_timeout.
HEARTBEAT_FAULT = "agent heartbeat timeout"
#: Provision states in which heartbeats drive the deploy interface (deploy, clean, inspect).
#: driver_internal_info keys Kiln keeps about the agent.
INFO_DISCOVERED = "discovered"
INFO_KILN_TRAITS = "kiln_traits"
#: driver_internal_info key: sha256 of the stored inventory (an identical report is not stored again).
INFO_INVENTORY_DIGEST = "kiln_inventory_sha256"
#: Seconds between two writes of the heartbeats received meanwhile (one transaction each).
HEARTBEAT_FLUSH_INTERVAL = 1.0
#: How far back (s) each pass looks for nodes changed by other processes: longer than any
#: transaction plus the clock skew between conductors, so no change slips between two passes.
CACHE_REFRESH_SLACK = 30.0
#: Idle passes after which the flusher thread ends (the next heartbeat starts it again).
_FLUSHER_IDLE_PASSES = 5
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


class _NotJSON(Exception):
    """A value JSON has no type for (the canonical text then falls back to str() of it)."""


def _refuse(value: Any) -> Any:
    raise _NotJSON(value)


#: The canonical encoder: keys sorted, compact. No cycle check: an inventory comes from JSON (a
#: cycle, or absurd nesting, still ends in RecursionError, and is then encoded as before).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_refuse, check_circular=False)


def canonical_inventory(inventory: dict) -> tuple[str, bool]:
    """The inventory's canonical JSON text (keys sorted, compact) and whether it is plain JSON.

    The text is what ``inventory_digest`` hashes. When the inventory holds values JSON has no type
    for, they are written as str() of them and the second item is False: such a text does not read
    back equal, so it is not one to store.
    """
    try:
        return _CANONICAL.encode(inventory), True  # ~1 ms for 50 kB
    except (_NotJSON, RecursionError):
        return json.dumps(inventory, sort_keys=True, separators=(",", ":"), default=str), False


def inventory_digest(inventory: dict, text: str | None = None) -> str:
    """sha256 of the inventory's canonical JSON (keys sorted): equal digests, equal inventories.

    ``text``: that canonical text when already made (canonical_inventory).
    """
    if text is None:
        text = canonical_inventory(inventory)[0]
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _report_state(node_uuid: str) -> types.SimpleNamespace | None:
    """The fields of the node an inventory report needs (db_api.get_node_report_state), or None."""
    state = db_api.get_node_report_state(node_uuid)
    return None if state is None else types.SimpleNamespace(**state)


def lldp_port_links(inventory: dict) -> dict[str, dict]:
    """{MAC: local_link_connection} of the NICs whose LLDP names a switch port, as Ironic's inspection sets.

    inventory["lldp"][ifname] is a parsed LLDP entry (agent.inventory.lldp), or one with only its
    "raw" TLVs, or IPA's bare [[type, hex], ...] list. Garbled or partial entries give nothing.
    """
    section = inventory.get("lldp")
    if not isinstance(section, dict) or not section:
        return {}
    links: dict[str, dict] = {}
    for nic in inventory.get("nics") or []:
        if not isinstance(nic, dict) or not isinstance(nic.get("name"), str):
            continue
        entry = section.get(nic["name"])
        mac = _macs([nic.get("mac_address")])
        if not mac or not entry:
            continue
        try:
            if (
                isinstance(entry, dict)
                and not entry.get("switch_port_id")
                and isinstance(entry.get("raw"), list)
            ):
                entry = lldp.parse_raw(entry["raw"])
            elif isinstance(entry, list):
                entry = lldp.parse_raw(entry)
            llc = lldp.local_link_connection(entry)
        except (TypeError, ValueError, AttributeError) as exc:
            LOG.debug("LLDP of %s not usable: %s", nic["name"], exc)
            continue
        if llc:
            links[mac[0]] = llc
    return links


# --- the heartbeat path's cache and batched writer --------------------------------------------------

#: Every live recorder, so that node changes committed in this process reach their caches.
_RECORDERS: weakref.WeakSet[HeartbeatRecorder] = weakref.WeakSet()
_CHANGED_KEY = "kiln_changed_nodes"


@event.listens_for(Session, "after_flush")
def _note_changed_nodes(session: Session, _flush_context: Any) -> None:
    changed = {
        obj.uuid
        for obj in (*session.new, *session.dirty, *session.deleted)
        if isinstance(obj, Node) and obj.uuid
    }
    if changed:
        session.info.setdefault(_CHANGED_KEY, set()).update(changed)


@event.listens_for(Session, "after_commit")
def _forget_changed_nodes(session: Session) -> None:
    changed = session.info.pop(_CHANGED_KEY, None)
    if changed:
        for recorder in list(_RECORDERS):
            recorder.invalidate(changed)


@event.listens_for(Session, "after_rollback")
def _drop_changed_nodes(session: Session) -> None:
    session.info.pop(_CHANGED_KEY, None)


class HeartbeatRecorder:
    """Agents' heartbeats without a database round trip each.

    Tokens are checked against a cache of {node uuid: id, token hash, provision_state, fault,
    updated_at}, read again on a miss or a mismatch. Entries go when this process commits a change
    to the node (a SQLAlchemy session hook), when another process changed it (each pass compares
    updated_at of the nodes changed in the last CACHE_REFRESH_SLACK seconds), when a heartbeat
    write finds the node gone, and all at once when no pass ran for a while or the database changed.
    Heartbeat times wait in memory and a thread writes them every ``interval`` seconds in one
    transaction (record_agent_heartbeats); ``flush()`` writes them now.
    """

    def __init__(self, interval: float = HEARTBEAT_FLUSH_INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, Any]] = {}
        self._generation = 0
        self._engine: Any = None
        self._pending: dict[int, datetime.datetime] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._refreshed = 0.0
        self._since: datetime.datetime | None = None
        _RECORDERS.add(self)

    # --- cache --------------------------------------------------------------------------------------

    def _same_database(self) -> None:
        """Forget everything when the process's database is not the one the cache was filled from."""
        engine = db_engine.current_engine()
        if engine is None:
            engine = db_api.get_engine()
        if engine is not self._engine:
            self._cache.clear()
            self._pending.clear()
            self._engine = engine
            self._generation += 1
            self._since = None

    def invalidate(self, uuids: Any = None) -> None:
        """Drop the cache entries of ``uuids`` (all entries when None)."""
        with self._lock:
            self._generation += 1
            if uuids is None:
                self._cache.clear()
                return
            for uuid in uuids:
                self._cache.pop(uuid, None)

    def lookup(self, node_uuid: str, token_hash: str | None) -> dict[str, Any] | None:
        """The node's entry: from the cache when ``token_hash`` matches it, else read now; None if no node."""
        with self._lock:
            self._same_database()
            if self._cache and time.monotonic() - self._refreshed > max(5.0, 3 * self.interval):
                self._cache.clear()  # nobody kept it fresh (the flusher was idle): start over
                self._generation += 1
            entry = self._cache.get(node_uuid)
            generation = self._generation
        if entry is not None and token_hash and entry["agent_token_hash"]:
            if hmac.compare_digest(entry["agent_token_hash"], token_hash):
                return entry
        entry = db_api.get_node_agent_auth(node_uuid)
        with self._lock:
            if entry is None:
                self._cache.pop(node_uuid, None)
            elif generation == self._generation:
                self._cache[node_uuid] = entry
                if self._since is None:
                    self._refreshed = time.monotonic()
                    self._since = utcnow()
        return entry

    def _refresh(self) -> None:
        """Drop entries of nodes changed (by anyone) since the last pass, minus the slack."""
        with self._lock:
            if not self._cache:
                self._since = None
                self._refreshed = time.monotonic()
                return
            since = self._since or utcnow()
        started = utcnow()
        changed = db_api.list_nodes_updated_since(since - datetime.timedelta(seconds=CACHE_REFRESH_SLACK))
        with self._lock:
            for uuid, updated in changed.items():
                entry = self._cache.get(uuid)
                if entry is not None and entry["updated_at"] != updated:
                    del self._cache[uuid]
            self._since = started
            self._refreshed = time.monotonic()

    # --- pending heartbeats -----------------------------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        """Note a heartbeat of the node of ``entry`` now; it is written at the next flush."""
        with self._lock:
            # To the second: the heartbeats of one second are then written by one UPDATE.
            self._pending[entry["id"]] = utcnow().replace(microsecond=0)
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._run, name="kiln-heartbeat-writer", daemon=True)
                self._thread.start()

    def pending(self) -> dict[int, datetime.datetime]:
        """The heartbeats not written yet: {node id: time}."""
        with self._lock:
            return dict(self._pending)

    def flush(self) -> int:
        """Write the pending heartbeats in one transaction and refresh the cache; how many were written."""
        with self._lock:
            batch, self._pending = self._pending, {}
            engine = self._engine
        written = 0
        if batch and db_engine.current_engine() is engine:
            try:
                missing = db_api.record_agent_heartbeats(batch)
            except Exception:
                with self._lock:  # keep them for the next pass (newer ones win)
                    for node_id, at in batch.items():
                        self._pending.setdefault(node_id, at)
                raise
            written = len(batch) - len(missing)
            if missing:
                gone = set(missing)
                with self._lock:
                    self._generation += 1
                    for uuid in [u for u, e in self._cache.items() if e["id"] in gone]:
                        del self._cache[uuid]
        elif batch:
            LOG.debug("Dropped %d heartbeats: the database changed before they were written", len(batch))
        if db_engine.current_engine() is engine and engine is not None:
            self._refresh()
        return written

    def _run(self) -> None:
        idle = 0
        while not self._stopping.wait(self.interval):
            try:
                idle = 0 if self.flush() else idle + 1
            except Exception:  # noqa: BLE001 - the next pass retries
                LOG.exception("Writing agent heartbeats failed; retrying in %s s", self.interval)
            with self._lock:
                if idle >= _FLUSHER_IDLE_PASSES and not self._pending:
                    self._thread = None
                    return
        with self._lock:
            self._thread = None

    def stop(self) -> None:
        """Stop the writer thread and write what is pending."""
        self._stopping.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(10.0)
        self.flush()
        self._stopping.clear()


_RECORDER_LOCK = threading.Lock()


class AgentEndpoints:
    """Mixin of ConductorManager: the RPC methods kiln-agent calls."""

    host: str
    #: Where agents cast heartbeats (handed out by lookup); the service sets it from its topic.
    heartbeat_topic: str = rpc.heartbeat_topic()

    # --- helpers --------------------------------------------------------------------------------

    @property
    def heartbeats(self) -> HeartbeatRecorder:
        """This conductor's heartbeat cache and writer (made on first use)."""
        recorder = self.__dict__.get("_kiln_heartbeats")
        if recorder is None:
            with _RECORDER_LOCK:
                recorder = self.__dict__.setdefault("_kiln_heartbeats", HeartbeatRecorder())
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
                node = _report_state(node_uuid)
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
        self.heartbeats.invalidate([node.uuid])  # an agent that looks up has (re)started: read it afresh
        if not node.agent_token_hash:
            with self._acquire(ctxt, node.uuid, "agent token", load_driver=False) as task:
                if not task.node.agent_token_hash:
                    token = secrets.token_urlsafe(32)
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

    # --- inventory ------------------------------------------------------------------------------

    def report_inventory(
        self, ctxt: dict, node_uuid: str, agent_token: str, inventory: dict, changes: dict | None = None
    ) -> dict:
        """Validate and store the node's inventory; update its properties, traits, name and ports.

        Returns {"stored": True, "traits": the node's traits}.
        """
        # Read fresh (no cache: another process may have stored a newer inventory or changed the
        # traits, and neither may be missed), but only the fields a report needs, in one query.
        node = self._authenticate(node_uuid, agent_token, "report_inventory", light=True)
        if changes is not None and not isinstance(changes, dict):
            raise exception.InventoryInvalid(
                node=node.uuid, reason=f"changes must be an object, not {changes!r}"
            )
        digest = text = None
        if isinstance(inventory, dict):
            # One canonical text: hashed for the digest, and stored as it is (when plain JSON).
            text, plain = canonical_inventory(inventory)
            digest = inventory_digest(inventory, text)
            if not plain:
                text = None
        if (
            digest is not None
            and node.provision_state != states.INSPECTWAIT
            and (node.driver_internal_info or {}).get(INFO_INVENTORY_DIGEST) == digest
        ):
            # The very inventory stored (and validated) before: acknowledge without work.
            LOG.debug("Node %s reported its stored inventory again; acknowledged", node.uuid)
            return {"stored": True, "traits": list(node.traits)}
        errors = validate_inventory(inventory, "json")
        if errors or digest is None:
            errors = errors or ["$: the inventory is not an object"]
            shown = "; ".join(errors[:_MAX_ERRORS_SHOWN])
            more = f" (and {len(errors) - _MAX_ERRORS_SHOWN} more)" if len(errors) > _MAX_ERRORS_SHOWN else ""
            LOG.warning("Node %s sent an invalid inventory: %s%s", node.uuid, shown, more)
            raise exception.InventoryInvalid(node=node.uuid, reason=shown + more)
        if node.provision_state == states.INSPECTWAIT:
            # The inspect hook runs under the node lock, as every hook does.
            with self._acquire(ctxt, node.uuid, "inventory report", load_driver=False) as task:
                stored = self._store_inventory(task.node, inventory, changes, digest, text)
                task.node, task.ports = stored["node"], stored["ports"]
                task.driver = driver_factory.build_driver_for_task(task)
                task.driver.inspect.inventory_received(task, inventory)
                found = list(task.node.traits)
        else:
            # No hook: the one transaction that stores the report stands in for the node lock (it
            # refuses a node another task holds, and holds the row while it writes).
            attempts = max(1, CONF.conductor.node_locked_retry_attempts)
            for attempt in range(1, attempts + 1):
                try:
                    stored = self._store_inventory(node, inventory, changes, digest, text, unlocked_only=True)
                    break
                except exception.NodeLocked:
                    if attempt == attempts:
                        raise
                    time.sleep(CONF.conductor.node_locked_retry_interval)
                    uuid, node = node.uuid, _report_state(node.uuid)
                    if node is None:
                        raise exception.NodeNotFound(node=uuid) from None
            found = list(stored["traits"])
        LOG.info(
            "Stored the inventory of node %s (%s)", node.uuid, "with changes" if changes else "full report"
        )
        return {"stored": True, "traits": found}

    def _store_inventory(
        self,
        node: Any,
        inventory: dict,
        changes: dict | None,
        digest: str,
        text: str | None = None,
        unlocked_only: bool = False,
    ) -> dict[str, Any]:
        """Inventory, properties, name, traits, new ports and their switch links in one transaction.

        ``text``: the inventory's canonical JSON, stored as it is (None: serialized when stored).
        Returns db_api.store_inventory_report's result: the node's traits, and the node and its ports
        as stored (None with ``unlocked_only``: nobody needs them; the node is then not loaded).
        Everything is derived before the transaction starts, so it holds the writer lock briefly.
        """
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
        internal[INFO_INVENTORY_DIGEST] = digest
        values: dict[str, Any] = {"properties": props, "driver_internal_info": internal}
        name = self._free_name(node, inventory)
        if name:
            values["name"] = name
        system = inventory.get("system") if isinstance(inventory.get("system"), dict) else {}
        pxe_mac = _bootif(system.get("pxe_interface"))
        stored = db_api.store_inventory_report(
            node.id,
            inventory,
            changes,
            values,
            traits=merged if sorted(node.traits) != merged else None,
            new_ports=[{"address": mac, "pxe_enabled": mac == pxe_mac} for mac in _inventory_macs(inventory)],
            port_links=lldp_port_links(inventory),
            unlocked_only=unlocked_only,
            with_ports=not unlocked_only,  # only the inspect hook (under the node lock) gets them
            inventory_text=text,
        )
        for mac, owner in stored["skipped"]:
            LOG.warning(
                "Node %s reports NIC %s, which is a port of another node (id %s); not enrolled",
                node.uuid,
                mac,
                owner,
            )
        for mac in stored["created"]:
            LOG.info("Node %s: enrolled port %s", node.uuid, mac)
        return stored

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

    # --- heartbeat and steps ----------------------------------------------------------------------

    def heartbeat(self, ctxt: dict, node_uuid: str, agent_token: str, status: dict) -> None:
        """Record that the node's agent is alive; clear a heartbeat fault; drive the deploy hook.

        The token is checked against the cache (read again on a miss), the time is written with the
        other heartbeats within HEARTBEAT_FLUSH_INTERVAL, and the node is locked only when a hook
        must run (deploy, clean, inspect wait) or the heartbeat fault must be cleared.
        """
        entry = self._authenticate_heartbeat(node_uuid, agent_token)
        self.heartbeats.record(entry)
        if entry["fault"] != HEARTBEAT_FAULT and entry["provision_state"] not in states.AGENT_WAIT_STATES:
            return
        uuid = entry["uuid"]
        try:
            with self._acquire(ctxt, uuid, "agent heartbeat", load_driver=False) as task:
                if task.node.fault == HEARTBEAT_FAULT:
                    values: dict[str, Any] = {"fault": None}
                    if (task.node.last_error or "").startswith(_heartbeat_error_prefix(uuid)):
                        values["last_error"] = None
                    task.update_node(values)
                    LOG.info("Node %s: the agent heartbeats again; fault cleared", uuid)
                if task.node.provision_state in states.AGENT_WAIT_STATES:
                    task.driver = driver_factory.build_driver_for_task(task)
                    task.agent_token = agent_token  # verified above; the hooks send it to the agent
                    task.driver.deploy.heartbeat(task, status if isinstance(status, dict) else {})
        except exception.NodeLocked as exc:
            LOG.info("Heartbeat of node %s recorded; its handling waits for the next one: %s", uuid, exc)
        except exception.NodeNotFound:
            self.heartbeats.invalidate([uuid])
            LOG.info("Heartbeat of node %s ignored: the node was deleted meanwhile", uuid)

    def _authenticate_heartbeat(self, node_uuid: Any, agent_token: Any) -> dict[str, Any]:
        """The node's cache entry if ``agent_token`` is its token; else log and raise InvalidAgentToken."""
        key = node_uuid.lower() if isinstance(node_uuid, str) and uuidutils.is_uuid_like(node_uuid) else None
        token_hash = hash_token(agent_token) if isinstance(agent_token, str) and agent_token else None
        entry = self.heartbeats.lookup(key, token_hash) if key else None
        if entry is None:
            LOG.warning(
                "Rejected heartbeat for unknown node %r: no such node, so no valid agent token", node_uuid
            )
            raise exception.InvalidAgentToken(node=node_uuid)
        if token_hash is None:
            LOG.warning("Rejected heartbeat from node %s: the agent sent no token", entry["uuid"])
            raise exception.InvalidAgentToken(node=entry["uuid"])
        if not entry["agent_token_hash"] or not hmac.compare_digest(entry["agent_token_hash"], token_hash):
            LOG.warning("Rejected heartbeat from node %s: wrong agent token", entry["uuid"])
            raise exception.InvalidAgentToken(node=entry["uuid"])
        return entry

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


class HeartbeatEndpoint:
    """What the heartbeat topic serves: ``heartbeat`` only, handled by the conductor's manager.

    Nothing else can be called there, so the topic's few worker threads (and its queue) carry
    heartbeats and nothing that must wait for them.
    """

    target = messaging.Target(version="1.0")

    def __init__(self, manager: AgentEndpoints) -> None:
        self._manager = manager

    def heartbeat(self, ctxt: dict, node_uuid: str, agent_token: str, status: dict) -> None:
        """The manager's heartbeat (token checked, time batched, hooks run)."""
        return self._manager.heartbeat(ctxt, node_uuid, agent_token, status)


def _heartbeat_error_prefix(node_uuid: str) -> str:
    return f"The agent of node {node_uuid} has not sent a heartbeat"


def heartbeat_error(node_uuid: str, timeout_s: int, last: datetime.datetime | None) -> str:
    """The last_error of a node flagged for missing heartbeats."""
    when = last.isoformat() if last is not None else "never"
    return (
        f"{_heartbeat_error_prefix(node_uuid)} for more than {timeout_s} s (last: {when}); "
        "check that kiln-agent runs on the node and reaches the message bus."
    )


expect_kiln_errors(AgentEndpoints, ("lookup", "report_inventory", "heartbeat", "step_result"))
