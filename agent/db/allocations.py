"""Allocations: Ironic's requests for a node of a resource class and traits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.db import engine as db_engine
from agent.db import exceptions as db_exc
from agent.db.common import (
    Conflicts,
    add_row,
    check_update,
    delete_row,
    equals,
    find_row,
    list_node_rows,
    new_row_values,
    resolve_node_id,
    update_row,
    where_filters,
)
from agent.db.models import Allocation


def _allocation_conflicts(values: dict[str, Any]) -> Conflicts:
    return {
        "uuid": lambda: db_exc.AllocationAlreadyExists(uuid=values.get("uuid")),
        "name": lambda: db_exc.AllocationDuplicateName(name=values.get("name")),
    }


def create_allocation(values: dict[str, Any]) -> Allocation:
    """Create an allocation (state "allocating" unless given); return it."""
    values = new_row_values(Allocation, values, "allocation")
    with db_engine.session(write=True) as sess:
        resolve_node_id(sess, values)
        return add_row(sess, Allocation(**values), "allocations", _allocation_conflicts(values))


def _get_allocation(sess: Session, ident: str) -> Allocation:
    return find_row(
        sess, Allocation, ident, "allocation", lambda: db_exc.AllocationNotFound(allocation=ident)
    )


def get_allocation(ident: str) -> Allocation:
    """Return the allocation with UUID or name ``ident``; AllocationNotFound otherwise."""
    with db_engine.session() as sess:
        return _get_allocation(sess, ident)


_ALLOCATION_FILTERS: dict[str, Callable] = {
    "conductor_affinity": equals(Allocation.conductor_affinity),
    "node_id": equals(Allocation.node_id),
    "owner": equals(Allocation.owner),
    "resource_class": equals(Allocation.resource_class),
    "state": equals(Allocation.state),
}


def list_allocations(
    filters: dict[str, Any] | None = None,
    limit: int | None = None,
    marker: str | None = None,
    sort_key: str = "id",
    sort_dir: str = "asc",
) -> list[Allocation]:
    """List allocations matching ``filters``, paginated like list_nodes."""
    query = where_filters(select(Allocation), filters, _ALLOCATION_FILTERS, "allocation")
    return list_node_rows(Allocation, query, None, "allocation", limit, marker, sort_key, sort_dir)


def update_allocation(ident: str, values: dict[str, Any]) -> Allocation:
    """Update the allocation's fields; return it."""
    values = dict(values)
    check_update(Allocation, values, "allocation", ident)
    conflicts = _allocation_conflicts(values)
    return update_row(lambda sess: _get_allocation(sess, ident), values, "allocations", conflicts)


def destroy_allocation(ident: str) -> None:
    """Delete the allocation with UUID or name ``ident``; AllocationNotFound otherwise."""
    delete_row(lambda sess: _get_allocation(sess, ident))
