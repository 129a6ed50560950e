"""Node inventories: the one way to store one, and the reads of what is stored.

``store_inventory`` writes an inventory, and what the report changes on the node (fields,
traits, new ports, switch links), in ONE transaction, whoever calls it:

- a caller that holds the node's lock (the inspect hook, a tool) gets the node and its ports back;
- an agent's report outside any lock (``holding_lock=False``) has the transaction stand in for the
  lock: a node a conductor holds is refused (NodeLocked), nothing written. Unless the report also
  names the node, the node is then not even loaded: statements built once at import write it, so
  the transaction (SQLite's one writer) does little but write. That is the conductor's fast path.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from oslo_utils import uuidutils
from sqlalchemy import JSON, TypeDecorator, bindparam, insert, select, type_coerce, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from agent.common import exception
from agent.common.macs import normalize_mac
from agent.db import engine as db_engine
from agent.db.common import (
    check_columns,
    check_traits,
    check_update,
    flush,
    ident_where,
    node_id_of,
    port_conflicts,
    replace_traits,
)
from agent.db.models import Node, NodeInventory, NodeInventoryHistory, NodeTrait, Port, utcnow


def get_node_inventory(node_id: int | str) -> dict[str, Any] | None:
    """Return the node's current inventory, or None when it has reported none."""
    with db_engine.session() as sess:
        row = sess.get(NodeInventory, node_id_of(sess, node_id))
        return None if row is None else row.inventory


def get_node_plugin_data(node_id: int | str) -> dict[str, Any] | None:
    """Return the plugin data stored beside the node's current inventory, or None."""
    with db_engine.session() as sess:
        row = sess.get(NodeInventory, node_id_of(sess, node_id))
        return None if row is None else row.plugin_data


def list_inventory_history(node_id: int | str, limit: int | None = None) -> list[dict[str, Any]]:
    """Return the node's stored inventories, newest first: dicts of id, inventory, changes, created_at."""
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise exception.InvalidParameterValue(err=f"Invalid limit {limit!r}: expected a positive integer.")
    with db_engine.session() as sess:
        query = (
            select(NodeInventoryHistory)
            .where(NodeInventoryHistory.node_id == node_id_of(sess, node_id))
            .order_by(NodeInventoryHistory.id.desc())
            .limit(limit)
        )
        return [
            {"id": r.id, "inventory": r.inventory, "changes": r.changes, "created_at": r.created_at}
            for r in sess.scalars(query)
        ]


def get_node_report_state(node_uuid: str) -> dict[str, Any] | None:
    """What an inventory report needs of node ``node_uuid``, read now in one light query; None if absent.

    {"id", "uuid", "name", "agent_token_hash", "provision_state", "properties", "driver_internal_info",
    "traits" (sorted)}.
    """
    if not isinstance(node_uuid, str) or not uuidutils.is_uuid_like(node_uuid):
        return None
    with db_engine.get_engine().connect() as conn:
        row = conn.execute(_REPORT_STATE_QUERY, {"uuid": node_uuid.lower()}).one_or_none()
        if row is None:
            return None
        state = dict(row._mapping)
        state["traits"] = list(conn.scalars(_REPORT_TRAITS_QUERY, {"node_id": state["id"]}))
    return state


# Built once: a statement made per call costs more than running it.
_REPORT_STATE_QUERY = select(
    Node.id,
    Node.uuid,
    Node.name,
    Node.agent_token_hash,
    Node.provision_state,
    Node.properties,
    Node.driver_internal_info,
).where(Node.uuid == bindparam("uuid"))
_REPORT_TRAITS_QUERY = (
    select(NodeTrait.trait).where(NodeTrait.node_id == bindparam("node_id")).order_by(NodeTrait.trait)
)


class _EncodedJSON(TypeDecorator):
    """A JSON column's value already serialized (as the column would): bound as it is."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        """No processing: the value is the JSON text."""
        return None


def _encode_json(sess: Session, value: Any) -> Any:
    """``value`` serialized once as a JSON column of the session's database would, for several rows."""
    serializer = getattr(sess.get_bind().dialect, "_json_serializer", None) or json.dumps
    return type_coerce(serializer(value), _EncodedJSON())


def store_inventory(
    node_id: int | str,
    inventory: dict[str, Any],
    *,
    changes: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    traits: list[str] | None = None,
    new_ports: list[dict[str, Any]] | None = None,
    port_links: dict[str, dict[str, Any]] | None = None,
    inventory_text: str | None = None,
    plugin_data: dict[str, Any] | None = None,
    holding_lock: bool = True,
) -> dict[str, Any]:
    """Store the node's inventory, and what its report changes, in ONE transaction; return what it left.

    Makes ``inventory`` the node's current one (history gets it with ``changes``; ``plugin_data``,
    when given, replaces the stored one), sets the node's ``values``, replaces its traits with
    ``traits`` (None: unchanged), creates ``new_ports`` (port values without node_id; one whose MAC
    already is a port is skipped) and merges ``port_links`` ({MAC: local_link_connection fields})
    into the node's own ports. ``inventory_text``: ``inventory`` already serialized as JSON that
    reads back equal to it (stored as it is). ``holding_lock``: whether the caller holds the node's
    lock; without it, see the module's doc.
    Returns {"node": Node (None on the fast path), "traits": the node's traits after the report,
    "ports": the node's ports (None without ``holding_lock``), "created": [MACs of the new ports],
    "skipped": [(MAC, owning node id)]}.
    """
    if not isinstance(inventory, dict):
        raise exception.InvalidParameterValue(
            err=f"Inventory of node {node_id} must be a dict, not {inventory!r}."
        )
    values = dict(values or {})
    check_update(Node, values, "node", node_id)
    ports = [dict(p) for p in new_ports or []]
    for port in ports:
        check_columns(Port, port, "port")
        port["address"] = normalize_mac(port.get("address"))
    links = {normalize_mac(mac): dict(llc) for mac, llc in (port_links or {}).items()}
    if (
        not holding_lock
        and "name" not in values
        and plugin_data is None
        and isinstance(node_id, int)
        and not isinstance(node_id, bool)
    ):
        return _store_fast(node_id, inventory, inventory_text, changes, values, traits, ports, links)
    now = utcnow()
    with db_engine.session(write=True) as sess:
        query = select(Node).where(ident_where(node_id))
        node = sess.scalars(query if holding_lock else query.with_for_update()).one_or_none()
        if node is None:
            raise exception.NodeNotFound(node=node_id)
        if not holding_lock and node.reservation is not None:
            raise exception.NodeLocked(node=node.uuid, host=node.reservation)
        if inventory_text is not None:
            encoded = type_coerce(inventory_text, _EncodedJSON())
        else:
            encoded = _encode_json(sess, inventory)  # one serialization for both rows
        current = {"inventory": encoded, "created_at": now}
        if plugin_data is not None:
            current["plugin_data"] = plugin_data
        replaced = sess.execute(
            update(NodeInventory)
            .where(NodeInventory.node_id == node.id)
            .values(current)
            .execution_options(synchronize_session=False)
        )
        if replaced.rowcount == 0:
            sess.execute(insert(NodeInventory).values(node_id=node.id, **current))
        sess.execute(
            insert(NodeInventoryHistory).values(
                node_id=node.id, inventory=encoded, changes=changes, created_at=now
            )
        )
        for key, value in values.items():
            setattr(node, key, value)
        if traits is not None:
            replace_traits(node, check_traits(traits, node.uuid))
        flush(sess, "nodes", {"name": lambda: exception.DuplicateName(name=values.get("name"))})
        own, created, skipped = _store_ports(sess, node.id, ports, links, holding_lock)
        sess.flush()
    return {
        "node": node,
        "traits": node.traits,
        "ports": own if holding_lock else None,
        "created": created,
        "skipped": skipped,
    }


def _store_ports(
    sess: Session, node_id: int, ports: list[dict[str, Any]], links: dict[str, dict], with_ports: bool
) -> tuple[list[Port] | None, list[str], list[tuple[str, int | None]]]:
    """A report's new ports and switch links: (the node's ports or None, created MACs, skipped ones)."""
    skipped: list[tuple[str, int | None]] = []
    created: list[str] = []
    addresses = [p["address"] for p in ports]
    owners = dict(sess.execute(_PORT_OWNERS_QUERY, {"addresses": addresses}).all() if addresses else [])
    for port in ports:
        if port["address"] in owners:
            if owners[port["address"]] != node_id:
                skipped.append((port["address"], owners[port["address"]]))
            continue
        port.setdefault("uuid", uuidutils.generate_uuid())
        sess.add(Port(node_id=node_id, **port))
        owners[port["address"]] = node_id
        created.append(port["address"])
    if created:
        flush(sess, "ports", port_conflicts({}))
    own: list[Port] | None = None
    if with_ports or links:
        query = select(Port).where(Port.node_id == node_id).order_by(Port.id)
        if not with_ports:
            query = query.where(Port.address.in_(sorted(links)))
        own = list(sess.scalars(query))
    for port in own or []:
        wanted = links.get(port.address)
        if wanted:
            merged = {**(port.local_link_connection or {}), **wanted}
            if merged != (port.local_link_connection or {}):
                port.local_link_connection = merged
    return own, created, skipped


_NODES = Node.__table__
_INVENTORIES = NodeInventory.__table__
_HISTORY = NodeInventoryHistory.__table__
_TRAITS = NodeTrait.__table__
_PORT_OWNERS_QUERY = select(Port.__table__.c.address, Port.__table__.c.node_id).where(
    Port.__table__.c.address.in_(bindparam("addresses", expanding=True))
)
_NODE_HOLDER_QUERY = select(_NODES.c.uuid, _NODES.c.reservation).where(_NODES.c.id == bindparam("b_node_id"))
_INVENTORY_UPDATE = (
    _INVENTORIES.update()
    .where(_INVENTORIES.c.node_id == bindparam("b_node_id"))
    .values(
        inventory=bindparam("v_inventory", type_=_EncodedJSON()),
        created_at=bindparam("v_created_at", type_=_INVENTORIES.c.created_at.type),
    )
)
_INVENTORY_INSERT = _INVENTORIES.insert().values(
    node_id=bindparam("b_node_id", type_=_INVENTORIES.c.node_id.type),
    inventory=bindparam("v_inventory", type_=_EncodedJSON()),
    created_at=bindparam("v_created_at", type_=_INVENTORIES.c.created_at.type),
)
_HISTORY_INSERT = _HISTORY.insert().values(
    node_id=bindparam("b_node_id", type_=_HISTORY.c.node_id.type),
    inventory=bindparam("v_inventory", type_=_EncodedJSON()),
    changes=bindparam("v_changes", type_=_HISTORY.c.changes.type),
    created_at=bindparam("v_created_at", type_=_HISTORY.c.created_at.type),
)
_TRAITS_DELETE = _TRAITS.delete().where(_TRAITS.c.node_id == bindparam("b_node_id"))
_TRAITS_INSERT = _TRAITS.insert().values(
    node_id=bindparam("b_node_id", type_=_TRAITS.c.node_id.type),
    trait=bindparam("v_trait", type_=_TRAITS.c.trait.type),
)


@functools.lru_cache(maxsize=32)
def _unlocked_node_update(columns: tuple[tuple[str, bool], ...]) -> Any:
    """UPDATE nodes SET <columns> WHERE id = :b_node_id AND reservation IS NULL, built once per column set.

    ``columns``: (name, already serialized JSON). updated_at is set by the column's onupdate, as a
    flush of the ORM object sets it.
    """
    return (
        _NODES.update()
        .where(_NODES.c.id == bindparam("b_node_id"), _NODES.c.reservation.is_(None))
        .values(
            {
                name: bindparam(f"v_{name}", type_=_EncodedJSON() if encoded else _NODES.c[name].type)
                for name, encoded in columns
            }
        )
    )


def _store_fast(
    node_id: int,
    inventory: dict[str, Any],
    inventory_text: str | None,
    changes: dict[str, Any] | None,
    values: dict[str, Any],
    traits: list[str] | None,
    ports: list[dict[str, Any]],
    links: dict[str, dict],
) -> dict[str, Any]:
    """store_inventory of an unreserved node without loading it (the module's fast path)."""
    # Everything that costs CPU happens here, before the transaction takes the writer lock.
    serializer = getattr(db_engine.get_engine().dialect, "_json_serializer", None) or json.dumps
    if inventory_text is None:
        inventory_text = serializer(inventory)
    wanted = None if traits is None else check_traits(traits, str(node_id))
    columns: list[tuple[str, bool]] = []
    params: dict[str, Any] = {"b_node_id": node_id}
    for name, value in values.items():
        # A JSON column's dict or list is serialized now, as the column would serialize it.
        encoded = isinstance(value, dict | list) and isinstance(_NODES.c[name].type, JSON)
        columns.append((name, encoded))
        params[f"v_{name}"] = serializer(value) if encoded else value
    node_update = _unlocked_node_update(tuple(columns)) if columns else None
    now = utcnow()
    rows = {"b_node_id": node_id, "v_inventory": inventory_text, "v_created_at": now}
    # A Core UPDATE bypasses the session hooks that drop the node from the heartbeat caches
    # (agent.conductor.heartbeats). That is fine here: a report changes neither the agent token,
    # the provision state nor the fault, and the caches also drop an entry whose updated_at
    # changed (HeartbeatRecorder's pass over recently changed nodes); this UPDATE moves updated_at.
    with db_engine.session(write=True) as sess:
        conn = sess.connection()
        for _attempt in range(3):
            if node_update is None:
                holder = conn.execute(_NODE_HOLDER_QUERY, {"b_node_id": node_id}).one_or_none()
                if holder is not None and holder.reservation is None:
                    break
            elif conn.execute(node_update, params).rowcount == 1:
                break
            else:
                holder = conn.execute(_NODE_HOLDER_QUERY, {"b_node_id": node_id}).one_or_none()
            if holder is None:
                raise exception.NodeNotFound(node=node_id)
            if holder.reservation is not None:
                raise exception.NodeLocked(node=holder.uuid, host=holder.reservation)
            # Released between our UPDATE and SELECT: try again.
        else:
            raise exception.NodeLocked(node=node_id, host="(another conductor, briefly)")
        if conn.execute(_INVENTORY_UPDATE, rows).rowcount == 0:
            conn.execute(_INVENTORY_INSERT, rows)
        conn.execute(_HISTORY_INSERT, {**rows, "v_changes": changes})
        if wanted is not None:
            conn.execute(_TRAITS_DELETE, {"b_node_id": node_id})
            if wanted:
                conn.execute(_TRAITS_INSERT, [{"b_node_id": node_id, "v_trait": t} for t in wanted])
            found = wanted
        else:  # unchanged by this report; read them as they are now (someone may have changed them)
            found = list(conn.scalars(_REPORT_TRAITS_QUERY, {"node_id": node_id}))
        _own, created, skipped = _store_ports(sess, node_id, ports, links, with_ports=False)
        sess.flush()
    return {"node": None, "traits": found, "ports": None, "created": created, "skipped": skipped}
