"""Ports: a node's NICs by MAC (the PXE and switch-port facts the conductor needs), and nodes by MAC."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.common import exception
from agent.common.macs import normalize_mac
from agent.db import engine as db_engine
from agent.db.common import (
    add_row,
    bool_filter,
    check_update,
    delete_row,
    equals,
    find_row,
    list_node_rows,
    new_row_values,
    port_conflicts,
    resolve_node_id,
    update_row,
    where_filters,
)
from agent.db.models import Node, Port


def create_port(values: dict[str, Any]) -> Port:
    """Create a port (``address`` a MAC, ``node_id`` a node id, UUID or name); return it."""
    values = new_row_values(Port, values, "port")
    if values.get("address") is None:
        raise exception.MissingParameterValue(err="A port needs an address (its MAC).")
    values["address"] = normalize_mac(values["address"])
    with db_engine.session(write=True) as sess:
        resolve_node_id(sess, values)
        return add_row(sess, Port(**values), "ports", port_conflicts(values))


def _get_port(sess: Session, ident: str) -> Port:
    return find_row(sess, Port, ident, "port", lambda: exception.PortNotFound(port=ident))


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
    "is_smartnic": lambda v: Port.is_smartnic == bool_filter(v, "is_smartnic"),
    "physical_network": equals(Port.physical_network),
    "portgroup_id": equals(Port.portgroup_id),
    "pxe_enabled": lambda v: Port.pxe_enabled == bool_filter(v, "pxe_enabled"),
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
    query = where_filters(select(Port), filters, _PORT_FILTERS, "port")
    return list_node_rows(Port, query, node_id, "port", limit, marker, sort_key, sort_dir)


def update_port(ident: str, values: dict[str, Any]) -> Port:
    """Update the port's fields (a new ``address`` is validated and normalised); return it."""
    values = dict(values)
    check_update(Port, values, "port", ident)
    if "address" in values:
        values["address"] = normalize_mac(values["address"])
    return update_row(lambda sess: _get_port(sess, ident), values, "ports", port_conflicts(values))


def destroy_port(ident: str) -> None:
    """Delete the port with UUID or name ``ident``; PortNotFound otherwise."""
    delete_row(lambda sess: _get_port(sess, ident))


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
