"""Kiln's database API: every query the conductor and the API make, returning ORM objects or plain values.

Objects are returned detached (sessions use expire_on_commit=False), so their attributes stay readable.
Errors are agent.common.exception classes (or their subclasses in agent.db.exceptions).
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable
from typing import Any

from oslo_utils import netutils, uuidutils
from sqlalchemy import JSON, Select, TypeDecorator, bindparam, delete, insert, select, type_coerce, update
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agent.common import exception
from agent.db import engine as db_engine
from agent.db import exceptions as db_exc
from agent.db.models import (
    Allocation,
    Conductor,
    Node,
    NodeInventory,
    NodeInventoryHistory,
    NodeTrait,
    Port,
    utcnow,
)
from agent.db.query import paginate

dispose = db_engine.dispose


def configure(url: str | None = None) -> Engine:
    """Use ``url`` (default [database]connection) as this process's database; return the engine."""
    return db_engine.configure(url)


def get_engine() -> Engine:
    """Return this process's engine (configured from the options on first use)."""
    return db_engine.get_engine()


# --- helpers -------------------------------------------------------------------------------------


def _check_columns(model: type, values: dict[str, Any], what: str, extra: tuple[str, ...] = ()) -> None:
    allowed = {c.key for c in model.__table__.columns} | set(extra)
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise exception.InvalidParameterValue(
            err=f"Unknown {what} field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(allowed))}."
        )


def _check_uuid(value: Any, field: str, what: str) -> str:
    if not isinstance(value, str) or not uuidutils.is_uuid_like(value):
        raise exception.InvalidParameterValue(err=f"Invalid {field} {value!r} for {what}: expected a UUID.")
    return value.lower()


def normalize_mac(mac: Any) -> str:
    """Return ``mac`` lower-cased with colons; InvalidParameterValue naming it when it is no MAC."""
    if isinstance(mac, str):
        candidate = mac.strip().lower().replace("-", ":")
        if netutils.is_valid_mac(candidate):
            return candidate
    raise exception.InvalidParameterValue(
        err=f"Invalid MAC address {mac!r}: expected six hex octets such as 52:54:00:12:34:56."
    )


def _check_traits(traits: Any, node: str) -> list[str]:
    if not isinstance(traits, list | tuple):
        raise exception.InvalidParameterValue(err=f"Traits of node {node} must be a list, not {traits!r}.")
    for trait in traits:
        if not isinstance(trait, str) or not 0 < len(trait) <= 255:
            raise exception.InvalidParameterValue(
                err=f"Invalid trait {trait!r} for node {node}: expected a string of 1 to 255 characters."
            )
    return sorted(set(traits))


def _flush(sess: Session, table: str, conflicts: dict[str, Callable[[], exception.KilnException]]) -> None:
    """Flush and turn a unique-constraint violation on ``table`` into the matching Kiln error."""
    try:
        sess.flush()
    except IntegrityError as exc:
        text = str(exc.orig)
        for column, make in conflicts.items():
            # SQLite names "table.column", PostgreSQL and MySQL the constraint uniq_<table>0<column>.
            if f"{table}.{column}" in text or f"uniq_{table}0{column}" in text:
                raise make() from exc
        raise


def _node_where(ident: str):
    if not isinstance(ident, str) or not ident:
        raise exception.InvalidParameterValue(
            err=f"Invalid node identifier {ident!r}: expected a UUID or name."
        )
    if uuidutils.is_uuid_like(ident):
        return Node.uuid == ident.lower()
    return Node.name == ident


def _ident_where(ident: str | int):
    return Node.id == ident if isinstance(ident, int) and not isinstance(ident, bool) else _node_where(ident)


def _get_node(sess: Session, ident: str | int) -> Node:
    if isinstance(ident, int):
        node = sess.get(Node, ident)
    else:
        node = sess.scalars(select(Node).where(_node_where(ident))).one_or_none()
    if node is None:
        raise exception.NodeNotFound(node=ident)
    return node


def _node_id(sess: Session, node: int | str) -> int:
    if isinstance(node, int):
        if sess.scalar(select(Node.id).where(Node.id == node)) is None:
            raise exception.NodeNotFound(node=node)
        return node
    node_id = sess.scalar(select(Node.id).where(_node_where(node)))
    if node_id is None:
        raise exception.NodeNotFound(node=node)
    return node_id


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise exception.InvalidParameterValue(err=f"Filter {name} must be true or false, not {value!r}.")
    return value


def _where_filters(
    query: Select, filters: dict[str, Any] | None, handlers: dict[str, Callable], what: str
) -> Select:
    for key, value in (filters or {}).items():
        handler = handlers.get(key)
        if handler is None:
            raise exception.InvalidParameterValue(
                err=f"Unknown {what} filter {key!r}; known filters: {', '.join(sorted(handlers))}."
            )
        query = query.where(handler(value))
    return query


def _eq(column) -> Callable:
    return lambda value: column == value


def _in(column, name: str) -> Callable:
    def build(values):
        if isinstance(values, str) or not isinstance(values, list | tuple | set):
            raise exception.InvalidParameterValue(err=f"Filter {name} must be a list, not {values!r}.")
        return column.in_(list(values))

    return build


# --- nodes ---------------------------------------------------------------------------------------


def create_node(values: dict[str, Any]) -> Node:
    """Create a node from Ironic-style fields (plus ``traits``); return it."""
    values = dict(values)
    traits = values.pop("traits", None)
    _check_columns(Node, values, "node")
    if not values.get("driver"):
        raise exception.MissingParameterValue(
            err="A node needs a driver (hardware type), e.g. fake-hardware."
        )
    values["uuid"] = _check_uuid(values.get("uuid") or uuidutils.generate_uuid(), "uuid", "node")
    for field in ("instance_uuid", "system_uuid"):
        if values.get(field) is not None:
            values[field] = _check_uuid(values[field], field, f"node {values['uuid']}")
    values.setdefault("provision_state", "enroll")
    values.setdefault("provision_updated_at", utcnow())
    node = Node(**values)
    node.trait_rows = [NodeTrait(trait=t) for t in _check_traits(traits or [], values["uuid"])]
    with db_engine.session(write=True) as sess:
        sess.add(node)
        _flush(
            sess,
            "nodes",
            {
                "uuid": lambda: exception.NodeAlreadyExists(uuid=values["uuid"]),
                "name": lambda: exception.DuplicateName(name=values.get("name")),
                "instance_uuid": lambda: db_exc.InstanceAssociated(
                    instance_uuid=values.get("instance_uuid"), node=values["uuid"]
                ),
            },
        )
    return node


def get_node(ident: str) -> Node:
    """Return the node with UUID or name ``ident``; NodeNotFound otherwise."""
    with db_engine.session() as sess:
        return _get_node(sess, ident)


def get_node_by_id(node_id: int) -> Node:
    """Return the node with database id ``node_id``; NodeNotFound otherwise."""
    if not isinstance(node_id, int):
        raise exception.InvalidParameterValue(err=f"Invalid node id {node_id!r}: expected an integer.")
    with db_engine.session() as sess:
        return _get_node(sess, node_id)


def get_node_by_instance(instance_uuid: str) -> Node:
    """Return the node associated with instance ``instance_uuid``; NodeNotFound otherwise."""
    instance_uuid = _check_uuid(instance_uuid, "instance_uuid", "the node lookup")
    with db_engine.session() as sess:
        node = sess.scalars(select(Node).where(Node.instance_uuid == instance_uuid)).one_or_none()
    if node is None:
        raise exception.NodeNotFound(node=f"with instance {instance_uuid}")
    return node


def get_node_by_system_uuid(system_uuid: str) -> Node:
    """Return the node whose SMBIOS system UUID is ``system_uuid``; NodeNotFound otherwise."""
    system_uuid = _check_uuid(system_uuid, "system_uuid", "the node lookup")
    with db_engine.session() as sess:
        node = sess.scalars(select(Node).where(Node.system_uuid == system_uuid).order_by(Node.id)).first()
    if node is None:
        raise exception.NodeNotFound(node=f"with system UUID {system_uuid}")
    return node


def _provisioned_before(seconds: int):
    return Node.provision_updated_at < utcnow() - datetime.timedelta(seconds=seconds)


_NODE_FILTERS: dict[str, Callable] = {
    "associated": lambda v: (
        Node.instance_uuid.is_not(None) if _bool(v, "associated") else Node.instance_uuid.is_(None)
    ),
    "conductor_group": _eq(Node.conductor_group),
    "driver": _eq(Node.driver),
    "fault": _eq(Node.fault),
    "instance_uuid": _eq(Node.instance_uuid),
    "lessee": _eq(Node.lessee),
    "maintenance": lambda v: Node.maintenance == _bool(v, "maintenance"),
    "owner": _eq(Node.owner),
    "power_state": _eq(Node.power_state),
    "protected": lambda v: Node.protected == _bool(v, "protected"),
    "provision_state": _eq(Node.provision_state),
    "provision_state_in": _in(Node.provision_state, "provision_state_in"),
    "provisioned_before": _provisioned_before,
    "reserved": lambda v: (
        Node.reservation.is_not(None) if _bool(v, "reserved") else Node.reservation.is_(None)
    ),
    "reserved_by_any_of": _in(Node.reservation, "reserved_by_any_of"),
    "resource_class": _eq(Node.resource_class),
    "retired": lambda v: Node.retired == _bool(v, "retired"),
    "uuid_in": _in(Node.uuid, "uuid_in"),
}


def list_nodes(
    filters: dict[str, Any] | None = None,
    limit: int | None = None,
    marker: str | None = None,
    sort_key: str = "id",
    sort_dir: str = "asc",
) -> list[Node]:
    """List nodes matching ``filters``, ``limit`` at a time after node UUID ``marker``, sorted."""
    query = _where_filters(select(Node), filters, _NODE_FILTERS, "node")
    with db_engine.session() as sess:
        marker_obj = None
        if marker is not None:
            marker_obj = sess.scalars(select(Node).where(Node.uuid == str(marker).lower())).one_or_none()
            if marker_obj is None:
                raise exception.InvalidParameterValue(err=f"Marker node {marker} could not be found.")
        query = paginate(query, Node, limit, marker_obj, sort_key, sort_dir)
        return list(sess.scalars(query))


def update_node(ident: str | int, values: dict[str, Any]) -> Node:
    """Update the node's fields (``traits`` replaces its traits); return the node."""
    values = dict(values)
    for field in ("id", "uuid"):
        if field in values:
            raise exception.InvalidParameterValue(err=f"Cannot change the {field} of existing node {ident}.")
    has_traits = "traits" in values
    traits = values.pop("traits", None)
    _check_columns(Node, values, "node")
    if "driver" in values and not values["driver"]:
        raise exception.InvalidParameterValue(err=f"The driver of node {ident} cannot be empty.")
    for field in ("instance_uuid", "system_uuid"):
        if values.get(field) is not None:
            values[field] = _check_uuid(values[field], field, f"node {ident}")
    if "provision_state" in values and "provision_updated_at" not in values:
        values["provision_updated_at"] = utcnow()
    with db_engine.session(write=True) as sess:
        node = _get_node(sess, ident)
        for key, value in values.items():
            setattr(node, key, value)
        if has_traits:
            _replace_traits(node, _check_traits(traits or [], node.uuid))
        _flush(
            sess,
            "nodes",
            {
                "name": lambda: exception.DuplicateName(name=values.get("name")),
                "instance_uuid": lambda: db_exc.InstanceAssociated(
                    instance_uuid=values.get("instance_uuid"), node=node.uuid
                ),
            },
        )
    return node


def destroy_node(ident: str | int) -> None:
    """Delete the node with its ports, traits and inventories; its allocations lose their node."""
    with db_engine.session(write=True) as sess:
        node = _get_node(sess, ident)
        for table in (Port, NodeInventory, NodeInventoryHistory):
            sess.execute(delete(table).where(table.node_id == node.id))
        sess.execute(update(Allocation).where(Allocation.node_id == node.id).values(node_id=None))
        sess.delete(node)


# --- traits --------------------------------------------------------------------------------------


def _replace_traits(node: Node, traits: list[str]) -> None:
    wanted = set(traits)
    node.trait_rows = [row for row in node.trait_rows if row.trait in wanted]
    have = {row.trait for row in node.trait_rows}
    node.trait_rows.extend(NodeTrait(trait=t) for t in sorted(wanted - have))


def set_node_traits(ident: str | int, traits: list[str]) -> list[str]:
    """Replace the node's traits with ``traits``; return them sorted."""
    with db_engine.session(write=True) as sess:
        node = _get_node(sess, ident)
        _replace_traits(node, _check_traits(traits, node.uuid))
        sess.flush()
        return node.traits


def add_node_trait(ident: str | int, trait: str) -> None:
    """Add one trait to the node (no error when it is already there)."""
    with db_engine.session(write=True) as sess:
        node = _get_node(sess, ident)
        (trait,) = _check_traits([trait], node.uuid)
        if trait not in node.traits:
            node.trait_rows.append(NodeTrait(trait=trait))


def remove_node_trait(ident: str | int, trait: str) -> None:
    """Remove one trait from the node; NotFound when the node does not have it."""
    with db_engine.session(write=True) as sess:
        node = _get_node(sess, ident)
        rows = [row for row in node.trait_rows if row.trait == trait]
        if not rows:
            raise exception.NotFound(f"Node {node.uuid} has no trait {trait!r}.")
        node.trait_rows.remove(rows[0])


def get_node_traits(ident: str | int) -> list[str]:
    """Return the node's traits, sorted."""
    return get_node(ident).traits if not isinstance(ident, int) else get_node_by_id(ident).traits


# --- reservations --------------------------------------------------------------------------------


def reserve_node(tag: str, ident: str | int) -> Node:
    """Atomically reserve the node for ``tag`` (a conductor host); NodeLocked if anyone holds it."""
    if not isinstance(tag, str) or not tag:
        raise exception.InvalidParameterValue(err=f"Invalid reservation tag {tag!r} for node {ident}.")
    where = _ident_where(ident)
    for _attempt in range(3):
        with db_engine.session(write=True) as sess:
            result = sess.execute(
                update(Node)
                .where(where, Node.reservation.is_(None))
                .values(reservation=tag)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                return _get_node(sess, ident)
            holder = sess.execute(select(Node.reservation).where(where)).one_or_none()
        if holder is None:
            raise exception.NodeNotFound(node=ident)
        if holder[0] is not None:
            raise exception.NodeLocked(node=ident, host=holder[0])
        # Released between our UPDATE and SELECT: try again.
    raise exception.NodeLocked(node=ident, host="(another conductor, briefly)")


def release_node(tag: str, ident: str | int) -> None:
    """Release ``tag``'s reservation of the node; NodeNotLocked if ``tag`` does not hold it."""
    where = _ident_where(ident)
    with db_engine.session(write=True) as sess:
        result = sess.execute(
            update(Node)
            .where(where, Node.reservation == tag)
            .values(reservation=None)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            return
        holder = sess.execute(select(Node.reservation).where(where)).one_or_none()
    if holder is None:
        raise exception.NodeNotFound(node=ident)
    raise exception.NodeNotLocked(node=ident, host=tag)


def clear_node_reservations_for_conductor(hostname: str) -> int:
    """Drop every reservation held by ``hostname`` (a dead conductor); return how many."""
    with db_engine.session(write=True) as sess:
        result = sess.execute(
            update(Node)
            .where(Node.reservation == hostname)
            .values(reservation=None)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount


# --- ports ---------------------------------------------------------------------------------------


def _port_conflicts(values: dict[str, Any]) -> dict[str, Callable[[], exception.KilnException]]:
    return {
        "address": lambda: exception.MACAlreadyExists(mac=values.get("address")),
        "uuid": lambda: db_exc.PortAlreadyExists(uuid=values.get("uuid")),
        "name": lambda: db_exc.PortDuplicateName(name=values.get("name")),
    }


def create_port(values: dict[str, Any]) -> Port:
    """Create a port (``address`` a MAC, ``node_id`` a node id, UUID or name); return it."""
    values = dict(values)
    _check_columns(Port, values, "port")
    if values.get("address") is None:
        raise exception.MissingParameterValue(err="A port needs an address (its MAC).")
    values["address"] = normalize_mac(values["address"])
    values["uuid"] = _check_uuid(values.get("uuid") or uuidutils.generate_uuid(), "uuid", "port")
    with db_engine.session(write=True) as sess:
        if values.get("node_id") is not None:
            values["node_id"] = _node_id(sess, values["node_id"])
        port = Port(**values)
        sess.add(port)
        _flush(sess, "ports", _port_conflicts(values))
    return port


def _get_port(sess: Session, ident: str) -> Port:
    if not isinstance(ident, str) or not ident:
        raise exception.InvalidParameterValue(
            err=f"Invalid port identifier {ident!r}: expected a UUID or name."
        )
    column = Port.uuid if uuidutils.is_uuid_like(ident) else Port.name
    port = sess.scalars(
        select(Port).where(column == (ident.lower() if column is Port.uuid else ident))
    ).first()
    if port is None:
        raise exception.PortNotFound(port=ident)
    return port


def get_port(ident: str) -> Port:
    """Return the port with UUID or name ``ident``; PortNotFound otherwise."""
    with db_engine.session() as sess:
        return _get_port(sess, ident)


def get_port_by_address(mac: str) -> Port:
    """Return the port with MAC ``mac`` (any case); PortNotFound otherwise."""
    address = normalize_mac(mac)
    with db_engine.session() as sess:
        port = sess.scalars(select(Port).where(Port.address == address)).one_or_none()
    if port is None:
        raise exception.PortNotFound(port=address)
    return port


def _address_filter(value: Any):
    return Port.address == normalize_mac(value)


_PORT_FILTERS: dict[str, Callable] = {
    "address": _address_filter,
    "is_smartnic": lambda v: Port.is_smartnic == _bool(v, "is_smartnic"),
    "physical_network": _eq(Port.physical_network),
    "portgroup_id": _eq(Port.portgroup_id),
    "pxe_enabled": lambda v: Port.pxe_enabled == _bool(v, "pxe_enabled"),
}


def list_ports(
    node_id: int | str | None = None,
    filters: dict[str, Any] | None = None,
    limit: int | None = None,
    marker: str | None = None,
    sort_key: str = "id",
    sort_dir: str = "asc",
) -> list[Port]:
    """List ports (of one node when ``node_id`` is an id, UUID or name), paginated like list_nodes."""
    query = _where_filters(select(Port), filters, _PORT_FILTERS, "port")
    with db_engine.session() as sess:
        if node_id is not None:
            query = query.where(Port.node_id == _node_id(sess, node_id))
        marker_obj = None
        if marker is not None:
            marker_obj = sess.scalars(select(Port).where(Port.uuid == str(marker).lower())).one_or_none()
            if marker_obj is None:
                raise exception.InvalidParameterValue(err=f"Marker port {marker} could not be found.")
        return list(sess.scalars(paginate(query, Port, limit, marker_obj, sort_key, sort_dir)))


def update_port(ident: str, values: dict[str, Any]) -> Port:
    """Update the port's fields (a new ``address`` is validated and normalised); return it."""
    values = dict(values)
    for field in ("id", "uuid"):
        if field in values:
            raise exception.InvalidParameterValue(err=f"Cannot change the {field} of existing port {ident}.")
    _check_columns(Port, values, "port")
    if "address" in values:
        values["address"] = normalize_mac(values["address"])
    with db_engine.session(write=True) as sess:
        if values.get("node_id") is not None:
            values["node_id"] = _node_id(sess, values["node_id"])
        port = _get_port(sess, ident)
        for key, value in values.items():
            setattr(port, key, value)
        _flush(sess, "ports", _port_conflicts(values))
    return port


def destroy_port(ident: str) -> None:
    """Delete the port with UUID or name ``ident``; PortNotFound otherwise."""
    with db_engine.session(write=True) as sess:
        sess.delete(_get_port(sess, ident))


def lookup_nodes_by_macs(macs: list[str]) -> list[Node]:
    """Return the nodes owning any of ``macs`` (any case; entries that are no MAC are ignored)."""
    addresses = set()
    for mac in macs or []:
        try:
            addresses.add(normalize_mac(mac))
        except exception.InvalidParameterValue:
            continue
    if not addresses:
        return []
    with db_engine.session() as sess:
        ids = select(Port.node_id).where(Port.address.in_(sorted(addresses)))
        return list(sess.scalars(select(Node).where(Node.id.in_(ids)).order_by(Node.id)))


# --- inventory -----------------------------------------------------------------------------------


def set_node_inventory(
    node_id: int | str,
    inventory: dict[str, Any],
    changes: dict[str, Any] | None = None,
    plugin_data: dict[str, Any] | None = None,
) -> None:
    """Make ``inventory`` the node's current one and append it, with ``changes``, to its history."""
    if not isinstance(inventory, dict):
        raise exception.InvalidParameterValue(
            err=f"Inventory of node {node_id} must be a dict, not {inventory!r}."
        )
    now = utcnow()
    with db_engine.session(write=True) as sess:
        nid = _node_id(sess, node_id)
        current = sess.get(NodeInventory, nid)
        if current is None:
            sess.add(NodeInventory(node_id=nid, inventory=inventory, plugin_data=plugin_data, created_at=now))
        else:
            current.inventory = inventory
            current.created_at = now
            if plugin_data is not None:
                current.plugin_data = plugin_data
        sess.add(NodeInventoryHistory(node_id=nid, inventory=inventory, changes=changes, created_at=now))


def get_node_inventory(node_id: int | str) -> dict[str, Any] | None:
    """Return the node's current inventory, or None when it has reported none."""
    with db_engine.session() as sess:
        row = sess.get(NodeInventory, _node_id(sess, node_id))
        return None if row is None else row.inventory


def get_node_plugin_data(node_id: int | str) -> dict[str, Any] | None:
    """Return the plugin data stored beside the node's current inventory, or None."""
    with db_engine.session() as sess:
        row = sess.get(NodeInventory, _node_id(sess, node_id))
        return None if row is None else row.plugin_data


def list_inventory_history(node_id: int | str, limit: int | None = None) -> list[dict[str, Any]]:
    """Return the node's stored inventories, newest first: dicts of id, inventory, changes, created_at."""
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise exception.InvalidParameterValue(err=f"Invalid limit {limit!r}: expected a positive integer.")
    with db_engine.session() as sess:
        query = (
            select(NodeInventoryHistory)
            .where(NodeInventoryHistory.node_id == _node_id(sess, node_id))
            .order_by(NodeInventoryHistory.id.desc())
            .limit(limit)
        )
        return [
            {"id": r.id, "inventory": r.inventory, "changes": r.changes, "created_at": r.created_at}
            for r in sess.scalars(query)
        ]


# --- heartbeats ----------------------------------------------------------------------------------


def record_agent_heartbeat(node_id: int | str, at: datetime.datetime | None = None) -> None:
    """Record a heartbeat from the node's agent at ``at`` (default now); updated_at is left alone."""
    with db_engine.session(write=True) as sess:
        where = _ident_where(node_id)
        result = sess.execute(
            update(Node)
            .where(where)
            .values(last_heartbeat_at=at or utcnow(), updated_at=Node.updated_at)
            .execution_options(synchronize_session=False)
        )
    if result.rowcount != 1:
        raise exception.NodeNotFound(node=node_id)


def get_nodes_missing_heartbeat(timeout_s: int, states: list[str] | None = None) -> list[Node]:
    """Nodes (in ``states``, if given) with no heartbeat, nor state change, for ``timeout_s`` seconds."""
    limit = utcnow() - datetime.timedelta(seconds=timeout_s)
    query = select(Node).where(
        (Node.last_heartbeat_at.is_(None) | (Node.last_heartbeat_at < limit)),
        (Node.provision_updated_at.is_(None) | (Node.provision_updated_at < limit)),
    )
    if states is not None:
        query = query.where(Node.provision_state.in_(list(states)))
    with db_engine.session() as sess:
        return list(sess.scalars(query.order_by(Node.id)))


# --- conductors ----------------------------------------------------------------------------------


def register_conductor(hostname: str, drivers: list[str], conductor_group: str = "") -> Conductor:
    """Register (or re-register) conductor ``hostname`` as online with ``drivers``; return it."""
    if not isinstance(hostname, str) or not hostname:
        raise exception.InvalidParameterValue(err=f"Invalid conductor hostname {hostname!r}.")
    values = {"online": True, "drivers": list(drivers), "conductor_group": conductor_group or ""}
    for _attempt in range(2):
        try:
            with db_engine.session(write=True) as sess:
                cond = sess.scalars(select(Conductor).where(Conductor.hostname == hostname)).one_or_none()
                if cond is None:
                    cond = Conductor(hostname=hostname, updated_at=utcnow(), **values)
                    sess.add(cond)
                else:
                    for key, value in values.items():
                        setattr(cond, key, value)
                    cond.updated_at = utcnow()
                sess.flush()
            return cond
        except IntegrityError:
            continue  # another process registered the same host at once; update its row
    raise exception.Conflict(f"Conductor {hostname} could not be registered: concurrent registrations.")


def get_conductor(hostname: str) -> Conductor:
    """Return conductor ``hostname``; ConductorNotRegistered otherwise."""
    with db_engine.session() as sess:
        cond = sess.scalars(select(Conductor).where(Conductor.hostname == hostname)).one_or_none()
    if cond is None:
        raise db_exc.ConductorNotRegistered(conductor=hostname)
    return cond


def _set_conductor(hostname: str, **values: Any) -> None:
    with db_engine.session(write=True) as sess:
        result = sess.execute(
            update(Conductor)
            .where(Conductor.hostname == hostname)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    if result.rowcount != 1:
        raise db_exc.ConductorNotRegistered(conductor=hostname)


def touch_conductor(hostname: str) -> None:
    """Record a heartbeat of conductor ``hostname`` (and mark it online)."""
    _set_conductor(hostname, online=True, updated_at=utcnow())


def unregister_conductor(hostname: str) -> None:
    """Mark conductor ``hostname`` offline (its row stays for history)."""
    _set_conductor(hostname, online=False)


def list_conductors() -> list[Conductor]:
    """Return every registered conductor, by hostname."""
    with db_engine.session() as sess:
        return list(sess.scalars(select(Conductor).order_by(Conductor.hostname)))


def get_online_conductors(timeout_s: int) -> list[Conductor]:
    """Conductors online with a heartbeat in the last ``timeout_s`` seconds, by hostname."""
    limit = utcnow() - datetime.timedelta(seconds=timeout_s)
    query = select(Conductor).where(Conductor.online.is_(True), Conductor.updated_at >= limit)
    with db_engine.session() as sess:
        return list(sess.scalars(query.order_by(Conductor.hostname)))


def get_offline_conductors(timeout_s: int) -> list[Conductor]:
    """Conductors unregistered or silent for more than ``timeout_s`` seconds, by hostname."""
    limit = utcnow() - datetime.timedelta(seconds=timeout_s)
    query = select(Conductor).where(
        Conductor.online.is_(False) | Conductor.updated_at.is_(None) | (Conductor.updated_at < limit)
    )
    with db_engine.session() as sess:
        return list(sess.scalars(query.order_by(Conductor.hostname)))


# --- allocations ---------------------------------------------------------------------------------


def _allocation_conflicts(values: dict[str, Any]) -> dict[str, Callable[[], exception.KilnException]]:
    return {
        "uuid": lambda: db_exc.AllocationAlreadyExists(uuid=values.get("uuid")),
        "name": lambda: db_exc.AllocationDuplicateName(name=values.get("name")),
    }


def create_allocation(values: dict[str, Any]) -> Allocation:
    """Create an allocation (state "allocating" unless given); return it."""
    values = dict(values)
    _check_columns(Allocation, values, "allocation")
    values["uuid"] = _check_uuid(values.get("uuid") or uuidutils.generate_uuid(), "uuid", "allocation")
    with db_engine.session(write=True) as sess:
        if values.get("node_id") is not None:
            values["node_id"] = _node_id(sess, values["node_id"])
        alloc = Allocation(**values)
        sess.add(alloc)
        _flush(sess, "allocations", _allocation_conflicts(values))
    return alloc


def _get_allocation(sess: Session, ident: str) -> Allocation:
    if not isinstance(ident, str) or not ident:
        raise exception.InvalidParameterValue(err=f"Invalid allocation identifier {ident!r}.")
    column = Allocation.uuid if uuidutils.is_uuid_like(ident) else Allocation.name
    value = ident.lower() if column is Allocation.uuid else ident
    alloc = sess.scalars(select(Allocation).where(column == value)).one_or_none()
    if alloc is None:
        raise db_exc.AllocationNotFound(allocation=ident)
    return alloc


def get_allocation(ident: str) -> Allocation:
    """Return the allocation with UUID or name ``ident``; AllocationNotFound otherwise."""
    with db_engine.session() as sess:
        return _get_allocation(sess, ident)


_ALLOCATION_FILTERS: dict[str, Callable] = {
    "conductor_affinity": _eq(Allocation.conductor_affinity),
    "node_id": _eq(Allocation.node_id),
    "owner": _eq(Allocation.owner),
    "resource_class": _eq(Allocation.resource_class),
    "state": _eq(Allocation.state),
}


def list_allocations(
    filters: dict[str, Any] | None = None,
    limit: int | None = None,
    marker: str | None = None,
    sort_key: str = "id",
    sort_dir: str = "asc",
) -> list[Allocation]:
    """List allocations matching ``filters``, paginated like list_nodes."""
    query = _where_filters(select(Allocation), filters, _ALLOCATION_FILTERS, "allocation")
    with db_engine.session() as sess:
        marker_obj = None
        if marker is not None:
            marker_obj = sess.scalars(
                select(Allocation).where(Allocation.uuid == str(marker).lower())
            ).one_or_none()
            if marker_obj is None:
                raise exception.InvalidParameterValue(err=f"Marker allocation {marker} could not be found.")
        return list(sess.scalars(paginate(query, Allocation, limit, marker_obj, sort_key, sort_dir)))


def update_allocation(ident: str, values: dict[str, Any]) -> Allocation:
    """Update the allocation's fields; return it."""
    values = dict(values)
    for field in ("id", "uuid"):
        if field in values:
            raise exception.InvalidParameterValue(
                err=f"Cannot change the {field} of existing allocation {ident}."
            )
    _check_columns(Allocation, values, "allocation")
    with db_engine.session(write=True) as sess:
        if values.get("node_id") is not None:
            values["node_id"] = _node_id(sess, values["node_id"])
        alloc = _get_allocation(sess, ident)
        for key, value in values.items():
            setattr(alloc, key, value)
        _flush(sess, "allocations", _allocation_conflicts(values))
    return alloc


def destroy_allocation(ident: str) -> None:
    """Delete the allocation with UUID or name ``ident``; AllocationNotFound otherwise."""
    with db_engine.session(write=True) as sess:
        sess.delete(_get_allocation(sess, ident))


# --- batched and light-weight queries for the conductor's hot paths ------------------------------

#: Most nodes one heartbeat UPDATE names (a CASE arm and an IN entry each).
_HEARTBEAT_CHUNK = 400


def record_agent_heartbeats(items: dict[int, datetime.datetime]) -> list[int]:
    """Record many agents' heartbeats ({node id: time}) in one transaction; return the ids of missing nodes.

    As record_agent_heartbeat, updated_at is left alone. Nodes that share a time (the conductor
    notes heartbeats to the second) are set by one UPDATE ... WHERE id IN (chunk).
    """
    by_time: dict[datetime.datetime, list[int]] = {}
    for node_id, at in sorted(items.items()):
        if not isinstance(node_id, int) or isinstance(node_id, bool) or not isinstance(at, datetime.datetime):
            raise exception.InvalidParameterValue(
                err=f"Heartbeat of node {node_id!r} at {at!r}: expected an integer node id and a datetime."
            )
        by_time.setdefault(at, []).append(node_id)
    missing: list[int] = []
    with db_engine.session(write=True) as sess:
        for at, ids in sorted(by_time.items()):
            for start in range(0, len(ids), _HEARTBEAT_CHUNK):
                chunk = ids[start : start + _HEARTBEAT_CHUNK]
                result = sess.execute(
                    update(Node)
                    .where(Node.id.in_(chunk))
                    .values(last_heartbeat_at=at, updated_at=Node.updated_at)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != len(chunk):
                    found = set(sess.scalars(select(Node.id).where(Node.id.in_(chunk))))
                    missing.extend(i for i in chunk if i not in found)
    return sorted(missing)


def get_node_agent_auth(node_uuid: str) -> dict[str, Any] | None:
    """What checking an agent's message needs of node ``node_uuid``, in one light query; None if absent.

    {"id", "uuid", "agent_token_hash", "provision_state", "fault", "updated_at"}.
    """
    if not isinstance(node_uuid, str) or not uuidutils.is_uuid_like(node_uuid):
        return None
    columns = (Node.id, Node.uuid, Node.agent_token_hash, Node.provision_state, Node.fault, Node.updated_at)
    with db_engine.session() as sess:
        row = sess.execute(select(*columns).where(Node.uuid == node_uuid.lower())).one_or_none()
    return None if row is None else dict(row._mapping)


def get_node_report_state(node_uuid: str) -> dict[str, Any] | None:
    """What an inventory report needs of node ``node_uuid``, read now in one light query; None if absent.

    {"id", "uuid", "name", "agent_token_hash", "provision_state", "properties", "driver_internal_info",
    "traits" (sorted)}.
    """
    if not isinstance(node_uuid, str) or not uuidutils.is_uuid_like(node_uuid):
        return None
    with get_engine().connect() as conn:
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


def list_nodes_updated_since(since: datetime.datetime) -> dict[str, datetime.datetime | None]:
    """{uuid: updated_at} of the nodes whose updated_at is ``since`` or later."""
    with db_engine.session() as sess:
        rows = sess.execute(select(Node.uuid, Node.updated_at).where(Node.updated_at >= since))
        return {uuid: updated for uuid, updated in rows}


def store_inventory_report(
    node_id: int,
    inventory: dict[str, Any],
    changes: dict[str, Any] | None,
    values: dict[str, Any],
    traits: list[str] | None = None,
    new_ports: list[dict[str, Any]] | None = None,
    port_links: dict[str, dict[str, Any]] | None = None,
    unlocked_only: bool = False,
    with_ports: bool = True,
    inventory_text: str | None = None,
) -> dict[str, Any]:
    """Store an agent's inventory report in ONE transaction and return what it left.

    Makes ``inventory`` the node's current one (history gets it with ``changes``), sets the node's
    ``values``, replaces its traits with ``traits`` (None: unchanged), creates ``new_ports`` (port
    values without node_id; one whose MAC already is a port is skipped) and merges
    ``port_links`` ({MAC: local_link_connection fields}) into the node's own ports. With
    ``unlocked_only`` the node's row is locked for the transaction (SELECT ... FOR UPDATE, or the
    UPDATE of its row; SQLite's writer lock) and NodeLocked is raised, nothing written, when a
    conductor holds its reservation: the transaction stands in for a node lock. ``inventory_text``:
    ``inventory`` already serialized as JSON that reads back equal to it (stored as it is).
    Returns {"node": Node (None on the light path, see below), "traits": the node's traits after
    the report, "ports": the node's ports (None without ``with_ports``), "created": [MACs of the new
    ports], "skipped": [(MAC, owning node id)]}.

    With ``unlocked_only``, without ``with_ports`` and without a new name (an agent's report outside
    any node lock), the node is not loaded: one UPDATE ... WHERE reservation IS NULL sets its
    values, and every statement is built beforehand, so the transaction does little but write.
    """
    if not isinstance(inventory, dict):
        raise exception.InvalidParameterValue(
            err=f"Inventory of node {node_id} must be a dict, not {inventory!r}."
        )
    values = dict(values)
    _check_columns(Node, values, "node")
    for field in ("id", "uuid"):
        if field in values:
            raise exception.InvalidParameterValue(
                err=f"Cannot change the {field} of existing node {node_id}."
            )
    ports = [dict(p) for p in new_ports or []]
    for port in ports:
        _check_columns(Port, port, "port")
        port["address"] = normalize_mac(port.get("address"))
    links = {normalize_mac(mac): dict(llc) for mac, llc in (port_links or {}).items()}
    if (
        unlocked_only
        and not with_ports
        and "name" not in values
        and isinstance(node_id, int)
        and not isinstance(node_id, bool)
    ):
        return _store_report_unlocked(
            node_id, inventory, inventory_text, changes, values, traits, ports, links
        )
    now = utcnow()
    with db_engine.session(write=True) as sess:
        query = select(Node).where(_ident_where(node_id))
        node = sess.scalars(query.with_for_update() if unlocked_only else query).one_or_none()
        if node is None:
            raise exception.NodeNotFound(node=node_id)
        if unlocked_only and node.reservation is not None:
            raise exception.NodeLocked(node=node.uuid, host=node.reservation)
        if inventory_text is not None:
            encoded = type_coerce(inventory_text, _EncodedJSON())
        else:
            encoded = _encode_json(sess, inventory)  # one serialization for both rows
        replaced = sess.execute(
            update(NodeInventory)
            .where(NodeInventory.node_id == node.id)
            .values(inventory=encoded, created_at=now)
            .execution_options(synchronize_session=False)
        )
        if replaced.rowcount == 0:
            sess.execute(insert(NodeInventory).values(node_id=node.id, inventory=encoded, created_at=now))
        sess.execute(
            insert(NodeInventoryHistory).values(
                node_id=node.id, inventory=encoded, changes=changes, created_at=now
            )
        )
        for key, value in values.items():
            setattr(node, key, value)
        if traits is not None:
            _replace_traits(node, _check_traits(traits, node.uuid))
        _flush(sess, "nodes", {"name": lambda: exception.DuplicateName(name=values.get("name"))})
        own, created, skipped = _store_report_ports(sess, node.id, ports, links, with_ports)
        sess.flush()
    return {
        "node": node,
        "traits": node.traits,
        "ports": own if with_ports else None,
        "created": created,
        "skipped": skipped,
    }


def _store_report_ports(
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
        _flush(sess, "ports", _port_conflicts({}))
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


def _store_report_unlocked(
    node_id: int,
    inventory: dict[str, Any],
    inventory_text: str | None,
    changes: dict[str, Any] | None,
    values: dict[str, Any],
    traits: list[str] | None,
    ports: list[dict[str, Any]],
    links: dict[str, dict],
) -> dict[str, Any]:
    """store_inventory_report of an unreserved node without loading it (see there)."""
    # Everything that costs CPU happens here, before the transaction takes the writer lock.
    serializer = getattr(get_engine().dialect, "_json_serializer", None) or json.dumps
    if inventory_text is None:
        inventory_text = serializer(inventory)
    wanted = None if traits is None else _check_traits(traits, str(node_id))
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
    # (_note_changed_nodes in agent.conductor.agent_endpoints). That is fine here: a report changes
    # neither the agent token, the provision state nor the fault, and the caches also drop an
    # entry whose updated_at changed (HeartbeatRecorder._refresh); this UPDATE moves updated_at.
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
        _own, created, skipped = _store_report_ports(sess, node_id, ports, links, with_ports=False)
        sess.flush()
    return {"node": None, "traits": found, "ports": None, "created": created, "skipped": skipped}
