"""Portgroups: a node's ports bonded together (a LAG on the switch, a bond on the host)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.common import exception
from agent.common.macs import normalize_mac
from agent.db import engine as db_engine
from agent.db.common import (
    Conflicts,
    add_row,
    check_update,
    equals,
    find_row,
    list_node_rows,
    new_row_values,
    resolve_node_id,
    update_row,
    where_filters,
)
from agent.db.models import Port, Portgroup


def portgroup_conflicts(values: dict[str, Any]) -> Conflicts:
    """The Kiln errors of a portgroup's unique columns (address, uuid, name) for ``flush``."""
    return {
        "address": lambda: exception.PortgroupMACAlreadyExists(mac=values.get("address")),
        "uuid": lambda: exception.PortgroupAlreadyExists(uuid=values.get("uuid")),
        "name": lambda: exception.PortgroupDuplicateName(name=values.get("name")),
    }


def create_portgroup(values: dict[str, Any]) -> Portgroup:
    """Create a portgroup of node ``node_id`` (an id, UUID or name); return it."""
    values = new_row_values(Portgroup, values, "portgroup")
    if values.get("node_id") is None:
        raise exception.MissingParameterValue(err="A portgroup needs a node (node_uuid).")
    if values.get("address") is not None:
        values["address"] = normalize_mac(values["address"])
    with db_engine.session(write=True) as sess:
        resolve_node_id(sess, values)
        return add_row(sess, Portgroup(**values), "portgroups", portgroup_conflicts(values))


def _get(sess: Session, ident: str) -> Portgroup:
    return find_row(sess, Portgroup, ident, "portgroup", lambda: exception.PortgroupNotFound(portgroup=ident))


def get_portgroup(ident: str) -> Portgroup:
    """Return the portgroup with UUID or name ``ident``; PortgroupNotFound otherwise."""
    with db_engine.session() as sess:
        return _get(sess, ident)


def get_portgroup_by_id(portgroup_id: int) -> Portgroup:
    """Return the portgroup with database id ``portgroup_id``; PortgroupNotFound otherwise."""
    with db_engine.session() as sess:
        row = sess.get(Portgroup, portgroup_id)
    if row is None:
        raise exception.PortgroupNotFound(portgroup=portgroup_id)
    return row


_FILTERS = {
    "address": lambda v: Portgroup.address == normalize_mac(v),
    "node_id": equals(Portgroup.node_id),
}


def list_portgroups(
    node_id: int | str | None = None,
    filters: dict[str, Any] | None = None,
    limit: int | None = None,
    marker: str | None = None,
    sort_key: str = "id",
    sort_dir: str = "asc",
) -> list[Portgroup]:
    """List portgroups (of one node when ``node_id`` is an id, UUID or name), paginated like list_ports."""
    query = where_filters(select(Portgroup), filters, _FILTERS, "portgroup")
    return list_node_rows(Portgroup, query, node_id, "portgroup", limit, marker, sort_key, sort_dir)


def portgroup_uuids(ids: list[int | None]) -> dict[int, str]:
    """Map portgroup database ids to their UUIDs (unknown ids are left out)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    with db_engine.session() as sess:
        rows = sess.execute(select(Portgroup.id, Portgroup.uuid).where(Portgroup.id.in_(wanted)))
        return {row.id: row.uuid for row in rows}


def update_portgroup(ident: str, values: dict[str, Any]) -> Portgroup:
    """Update the portgroup's fields (a new ``address`` is normalised); return it."""
    values = dict(values)
    check_update(Portgroup, values, "portgroup", ident)
    if values.get("address") is not None:
        values["address"] = normalize_mac(values["address"])
    return update_row(lambda sess: _get(sess, ident), values, "portgroups", portgroup_conflicts(values))


def destroy_portgroup(ident: str) -> None:
    """Delete an empty portgroup; PortgroupNotEmpty while ports are still in it."""
    with db_engine.session(write=True) as sess:
        row = _get(sess, ident)
        members = sess.scalar(select(func.count()).select_from(Port).where(Port.portgroup_id == row.id))
        if members:
            raise exception.PortgroupNotEmpty(portgroup=row.uuid)
        sess.delete(row)
