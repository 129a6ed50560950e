"""An agent's inventory report, after its token is checked: validate, derive, store in one transaction.

An inventory equal to the one stored (same sha256 of its canonical JSON) is acknowledged without
work. Otherwise it is validated against the schema, the node's properties, traits, name, new
ports and their switch links (from LLDP) are derived, and agent.db.inventory.store_inventory
writes it all in one transaction: under the node lock when the inspect hook must run, else with
the transaction standing in for the lock (the fast path).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import types
from typing import Any

from oslo_log import log as logging
from oslo_utils import uuidutils

from agent.common import exception, macs, states
from agent.common.config import CONF
from agent.conductor import gpu_acceptance, inspection_rules, task_manager, waits
from agent.conductor import traits as traits_mod
from agent.conductor.drivers import driver_factory
from agent.db import api as db_api
from agent.db import inventory as db_inventory
from agent.inventory import lldp
from agent.inventory.schema import validate_inventory
from agent.metrics import conductor as metrics

LOG = logging.getLogger(__name__)

#: driver_internal_info key: the node was enrolled by lookup (discovery); it may take its hostname.
INFO_DISCOVERED = "discovered"
#: driver_internal_info key: the traits Kiln derived from the last inventory (others are the operator's).
INFO_KILN_TRAITS = "kiln_traits"
#: driver_internal_info key: sha256 of the stored inventory (an identical report is not stored again).
INFO_INVENTORY_DIGEST = "kiln_inventory_sha256"
_MAX_ERRORS_SHOWN = 10
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,254}$")


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


def report_state(node_uuid: str) -> types.SimpleNamespace | None:
    """The fields of the node a report needs (db get_node_report_state) as attributes, or None."""
    state = db_inventory.get_node_report_state(node_uuid)
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
        mac = macs.valid_macs([nic.get("mac_address")])
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


def receive_report(ctxt: dict, host: str, node: Any, inventory: Any, changes: Any) -> dict:
    """Validate and store an authenticated node's inventory report; {"stored": True, "traits": [...]}.

    ``node``: what report_state read of the node (fresh: another process may have stored a newer
    inventory or changed the traits, and neither may be missed). ``host``: this conductor, which
    takes the node lock when the inspect hook must run.
    """
    if changes is not None and not isinstance(changes, dict):
        raise exception.InventoryInvalid(node=node.uuid, reason=f"changes must be an object, not {changes!r}")
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
        with task_manager.acquire(
            ctxt, node.uuid, purpose="inventory report", host=host, load_driver=False
        ) as task:
            stored = store_report(task.node, inventory, changes, digest, text, holding_lock=True)
            task.node, task.ports = stored["node"], stored["ports"]
            task.driver = driver_factory.build_driver_for_task(task)
            task.driver.inspect.inventory_received(task, inventory)
            found = list(task.node.traits)
    else:
        # No hook: the one transaction that stores the report stands in for the node lock (it
        # refuses a node another task holds, and holds the row while it writes).
        # A locked node is tried again as soon as a task of this process lets a lock go (at most
        # node_locked_retry_interval later, for a lock another conductor holds).
        attempts = max(1, CONF.conductor.node_locked_retry_attempts)
        start, began = time.time(), time.monotonic()
        for attempt in range(1, attempts + 1):
            seen = task_manager.releases()
            try:
                stored = store_report(node, inventory, changes, digest, text, holding_lock=False)
                break
            except exception.NodeLocked:
                if attempt == attempts:
                    waits.record(
                        node.uuid, "lock", start, time.monotonic() - began, purpose="inventory report"
                    )
                    raise
                task_manager.wait_for_release(seen, CONF.conductor.node_locked_retry_interval)
                uuid, node = node.uuid, report_state(node.uuid)
                if node is None:
                    raise exception.NodeNotFound(node=uuid) from None
        if attempt > 1:
            waits.record(node.uuid, "lock", start, time.monotonic() - began, purpose="inventory report")
        found = list(stored["traits"])
    metrics.inventory_changes(changes)
    LOG.info("Stored the inventory of node %s (%s)", node.uuid, "with changes" if changes else "full report")
    return {"stored": True, "traits": found}


def store_report(
    node: Any, inventory: dict, changes: dict | None, digest: str, text: str | None, holding_lock: bool
) -> dict[str, Any]:
    """Inventory, properties, name, traits, new ports and their switch links in one transaction.

    ``text``: the inventory's canonical JSON, stored as it is (None: serialized when stored).
    Returns store_inventory's result: the node's traits, and (``holding_lock``: the caller holds
    the node lock) the node and its ports as stored; without it nobody needs them, and the node is
    not loaded. Everything is derived before the transaction starts, so it holds the writer lock briefly.
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
    gpu_acceptance.record_baseline(internal, inventory)
    values: dict[str, Any] = {"properties": props, "driver_internal_info": internal}
    name = free_name(node, inventory)
    if name:
        values["name"] = name
    values, ruled_traits, plugin_data = inspection_rules.apply_rules(node, inventory, values, merged)
    system = inventory.get("system") if isinstance(inventory.get("system"), dict) else {}
    pxe_mac = macs.parse_bootif(system.get("pxe_interface"))
    stored = db_inventory.store_inventory(
        node.id,
        inventory,
        changes=changes,
        values=values,
        traits=ruled_traits if sorted(node.traits) != ruled_traits else None,
        plugin_data=plugin_data or None,
        new_ports=[
            {"address": mac, "pxe_enabled": mac == pxe_mac} for mac in macs.device_nic_macs(inventory)
        ],
        port_links=lldp_port_links(inventory),
        inventory_text=text,
        holding_lock=holding_lock,
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


def free_name(node: Any, inventory: dict) -> str | None:
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
