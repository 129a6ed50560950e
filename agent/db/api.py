"""Kiln's database API: nodes, their traits and reservations; and the facade for the rest.

Objects are returned detached (sessions use expire_on_commit=False), so their attributes stay readable.
Errors are agent.common.exception classes (or their subclasses in agent.db.exceptions).

Each other resource has its own module: agent.db.ports, agent.db.portgroups, agent.db.conductors,
agent.db.allocations, agent.db.turnover, agent.db.heartbeats (the conductor's hot heartbeat queries) and
agent.db.inventory (the one way to store an inventory). Their public functions are re-exported
below so that ``db_api.<function>`` stays one stable facade for the API, the conductor and the
tools; new code in the db package imports the module it needs.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from oslo_utils import uuidutils
from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Engine

from agent.common import exception
from agent.common.macs import normalize_mac  # noqa: F401 - also the facade's: the port controller uses it
from agent.db import engine as db_engine
from agent.db import exceptions as db_exc
from agent.db.allocations import (  # noqa: F401 - the facade
    create_allocation,
    destroy_allocation,
    get_allocation,
    list_allocations,
    update_allocation,
)
from agent.db.common import (
    bool_filter,
    check_columns,
    check_traits,
    check_update,
    check_uuid,
    equals,
    flush,
    ident_where,
    list_page,
    load_node,
    one_of,
    replace_traits,
    where_filters,
)
from agent.db.conductors import (  # noqa: F401 - the facade
    get_conductor,
    get_offline_conductors,
    get_online_conductors,
    list_conductors,
    register_conductor,
    touch_conductor,
    unregister_conductor,
)
from agent.db.heartbeats import (  # noqa: F401 - the facade
    get_node_agent_auth,
    get_nodes_missing_heartbeat,
    list_nodes_updated_since,
    record_agent_heartbeat,
    record_agent_heartbeats,
)
from agent.db.inventory import (  # noqa: F401 - the facade
    get_node_inventory,
    get_node_plugin_data,
    get_node_report_state,
    list_inventory_history,
    store_inventory,
)
from agent.db.models import (
    Allocation,
    Node,
    NodeHistory,
    NodeInventory,
    NodeInventoryHistory,
    NodeTrait,
    Port,
    Portgroup,
    utcnow,
)
from agent.db.portgroups import (  # noqa: F401 - the facade
    create_portgroup,
    destroy_portgroup,
    get_portgroup,
    get_portgroup_by_id,
    list_portgroups,
    portgroup_uuids,
    update_portgroup,
)
from agent.db.ports import (  # noqa: F401 - the facade
    create_port,
    destroy_port,
    get_port,
    get_port_by_address,
    list_ports,
    lookup_nodes_by_macs,
    update_port,
)
from agent.db.turnover import (  # noqa: F401 - the facade
    create_turnover_record,
    get_turnover_record,
    list_turnover_records,
)

dispose = db_engine.dispose


def configure(url: str | None = None) -> Engine:
    """Use ``url`` (default [database]connection) as this process's database; return the engine."""
    return db_engine.configure(url)


def get_engine() -> Engine:
    """Return this process's engine (configured from the options on first use)."""
    return db_engine.get_engine()


# --- nodes ---------------------------------------------------------------------------------------


def create_node(values: dict[str, Any]) -> Node:
    """Create a node from Ironic-style fields (plus ``traits``); return it."""
    values = dict(values)
    traits = values.pop("traits", None)
    check_columns(Node, values, "node")
    if not values.get("driver"):
        raise exception.MissingParameterValue(
            err="A node needs a driver (hardware type), e.g. fake-hardware."
        )
    values["uuid"] = check_uuid(values.get("uuid") or uuidutils.generate_uuid(), "uuid", "node")
    for field in ("instance_uuid", "system_uuid"):
        if values.get(field) is not None:
            values[field] = check_uuid(values[field], field, f"node {values['uuid']}")
    values.setdefault("provision_state", "enroll")
    values.setdefault("provision_updated_at", utcnow())
    node = Node(**values)
    node.trait_rows = [NodeTrait(trait=t) for t in check_traits(traits or [], values["uuid"])]
    with db_engine.session(write=True) as sess:
        sess.add(node)
        flush(
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
        return load_node(sess, ident)


def get_node_by_id(node_id: int) -> Node:
    """Return the node with database id ``node_id``; NodeNotFound otherwise."""
    if not isinstance(node_id, int):
        raise exception.InvalidParameterValue(err=f"Invalid node id {node_id!r}: expected an integer.")
    with db_engine.session() as sess:
        return load_node(sess, node_id)


def get_node_by_instance(instance_uuid: str) -> Node:
    """Return the node associated with instance ``instance_uuid``; NodeNotFound otherwise."""
    instance_uuid = check_uuid(instance_uuid, "instance_uuid", "the node lookup")
    with db_engine.session() as sess:
        node = sess.scalars(select(Node).where(Node.instance_uuid == instance_uuid)).one_or_none()
    if node is None:
        raise exception.NodeNotFound(node=f"with instance {instance_uuid}")
    return node


def get_node_by_system_uuid(system_uuid: str) -> Node:
    """Return the node whose SMBIOS system UUID is ``system_uuid``; NodeNotFound otherwise."""
    system_uuid = check_uuid(system_uuid, "system_uuid", "the node lookup")
    with db_engine.session() as sess:
        node = sess.scalars(select(Node).where(Node.system_uuid == system_uuid).order_by(Node.id)).first()
    if node is None:
        raise exception.NodeNotFound(node=f"with system UUID {system_uuid}")
    return node


def _provisioned_before(seconds: int):
    return Node.provision_updated_at < utcnow() - datetime.timedelta(seconds=seconds)


_NODE_FILTERS: dict[str, Callable] = {
    "associated": lambda v: (
        Node.instance_uuid.is_not(None) if bool_filter(v, "associated") else Node.instance_uuid.is_(None)
    ),
    "conductor_group": equals(Node.conductor_group),
    "conductor_affinity_not": lambda v: or_(Node.conductor_affinity.is_(None), Node.conductor_affinity != v),
    "driver": equals(Node.driver),
    "fault": equals(Node.fault),
    "instance_uuid": equals(Node.instance_uuid),
    "lessee": equals(Node.lessee),
    "maintenance": lambda v: Node.maintenance == bool_filter(v, "maintenance"),
    "owner": equals(Node.owner),
    "power_state": equals(Node.power_state),
    "protected": lambda v: Node.protected == bool_filter(v, "protected"),
    "provision_state": equals(Node.provision_state),
    "provision_state_in": one_of(Node.provision_state, "provision_state_in"),
    "provisioned_before": _provisioned_before,
    "reserved": lambda v: (
        Node.reservation.is_not(None) if bool_filter(v, "reserved") else Node.reservation.is_(None)
    ),
    "reserved_by_any_of": one_of(Node.reservation, "reserved_by_any_of"),
    "resource_class": equals(Node.resource_class),
    "retired": lambda v: Node.retired == bool_filter(v, "retired"),
    "chassis_id": equals(Node.chassis_id),
    "shard": equals(Node.shard),
    "instance_name": equals(Node.instance_name),
    "uuid_in": one_of(Node.uuid, "uuid_in"),
}


def list_nodes(
    filters: dict[str, Any] | None = None,
    limit: int | None = None,
    marker: str | None = None,
    sort_key: str = "id",
    sort_dir: str = "asc",
) -> list[Node]:
    """List nodes matching ``filters``, ``limit`` at a time after node UUID ``marker``, sorted."""
    query = where_filters(select(Node), filters, _NODE_FILTERS, "node")
    with db_engine.session() as sess:
        return list_page(sess, query, Node, "node", limit, marker, sort_key, sort_dir)


def update_node(ident: str | int, values: dict[str, Any]) -> Node:
    """Update the node's fields (``traits`` replaces its traits); return the node."""
    values = dict(values)
    check_update(Node, values, "node", ident, extra=("traits",))
    has_traits = "traits" in values
    traits = values.pop("traits", None)
    if "driver" in values and not values["driver"]:
        raise exception.InvalidParameterValue(err=f"The driver of node {ident} cannot be empty.")
    for field in ("instance_uuid", "system_uuid"):
        if values.get(field) is not None:
            values[field] = check_uuid(values[field], field, f"node {ident}")
    if "provision_state" in values and "provision_updated_at" not in values:
        values["provision_updated_at"] = utcnow()
    with db_engine.session(write=True) as sess:
        node = load_node(sess, ident)
        for key, value in values.items():
            setattr(node, key, value)
        if has_traits:
            replace_traits(node, check_traits(traits or [], node.uuid))
        flush(
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
    """Delete the node with its ports, portgroups, traits, inventories and history; allocations lose it."""
    with db_engine.session(write=True) as sess:
        node = load_node(sess, ident)
        for table in (Port, Portgroup, NodeInventory, NodeInventoryHistory, NodeHistory):
            sess.execute(delete(table).where(table.node_id == node.id))
        sess.execute(update(Allocation).where(Allocation.node_id == node.id).values(node_id=None))
        sess.delete(node)


# --- traits --------------------------------------------------------------------------------------


def set_node_traits(ident: str | int, traits: list[str]) -> list[str]:
    """Replace the node's traits with ``traits``; return them sorted."""
    with db_engine.session(write=True) as sess:
        node = load_node(sess, ident)
        replace_traits(node, check_traits(traits, node.uuid))
        sess.flush()
        return node.traits


def add_node_trait(ident: str | int, trait: str) -> None:
    """Add one trait to the node (no error when it is already there)."""
    with db_engine.session(write=True) as sess:
        node = load_node(sess, ident)
        (trait,) = check_traits([trait], node.uuid)
        if trait not in node.traits:
            node.trait_rows.append(NodeTrait(trait=trait))


def remove_node_trait(ident: str | int, trait: str) -> None:
    """Remove one trait from the node; NotFound when the node does not have it."""
    with db_engine.session(write=True) as sess:
        node = load_node(sess, ident)
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
    where = ident_where(ident)
    # A read first: a node someone holds is refused without queueing for the write lock (SQLite
    # has one writer; a busy fleet retries locks often). The UPDATE below still decides.
    with db_engine.session() as sess:
        holder = sess.execute(select(Node.reservation).where(where)).one_or_none()
    if holder is not None and holder[0] is not None:
        raise exception.NodeLocked(node=ident, host=holder[0])
    for _attempt in range(3):
        with db_engine.session(write=True) as sess:
            result = sess.execute(
                update(Node)
                .where(where, Node.reservation.is_(None))
                .values(reservation=tag)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                return load_node(sess, ident)
            holder = sess.execute(select(Node.reservation).where(where)).one_or_none()
        if holder is None:
            raise exception.NodeNotFound(node=ident)
        if holder[0] is not None:
            raise exception.NodeLocked(node=ident, host=holder[0])
        # Released between our UPDATE and SELECT: try again.
    raise exception.NodeLocked(node=ident, host="(another conductor, briefly)")


def release_node(tag: str, ident: str | int) -> None:
    """Release ``tag``'s reservation of the node; NodeNotLocked if ``tag`` does not hold it."""
    where = ident_where(ident)
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
