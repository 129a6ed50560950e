"""What the database modules share: input checks, node look-ups by id, UUID or name, and the
translation of unique-constraint violations into Kiln's errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oslo_utils import uuidutils
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agent.common import exception
from agent.db import engine as db_engine
from agent.db import exceptions as db_exc
from agent.db.models import Node, NodeTrait
from agent.db.query import paginate

#: What a failed unique constraint becomes: {column: a function making the Kiln error}.
Conflicts = dict[str, Callable[[], exception.KilnException]]


def check_columns(model: type, values: dict[str, Any], what: str, extra: tuple[str, ...] = ()) -> None:
    """InvalidParameterValue, naming the known fields, when a key of ``values`` is no column of ``model``."""
    allowed = {c.key for c in model.__table__.columns} | set(extra)
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise exception.InvalidParameterValue(
            err=f"Unknown {what} field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(allowed))}."
        )


def check_update(
    model: type, values: dict[str, Any], kind: str, ident: Any, extra: tuple[str, ...] = ()
) -> None:
    """Refuse what an update of ``kind`` ``ident`` may not set: its id or UUID, or no column of ``model``."""
    for field in ("id", "uuid"):
        if field in values:
            raise exception.InvalidParameterValue(
                err=f"Cannot change the {field} of existing {kind} {ident}."
            )
    check_columns(model, values, kind, extra)


def check_uuid(value: Any, field: str, what: str) -> str:
    """``value`` lower-cased when it is a UUID; else InvalidParameterValue naming ``field`` of ``what``."""
    if not isinstance(value, str) or not uuidutils.is_uuid_like(value):
        raise exception.InvalidParameterValue(err=f"Invalid {field} {value!r} for {what}: expected a UUID.")
    return value.lower()


def check_traits(traits: Any, node: str) -> list[str]:
    """``traits`` sorted, deduplicated; InvalidParameterValue unless a list of 1-255 character strings."""
    if not isinstance(traits, list | tuple):
        raise exception.InvalidParameterValue(err=f"Traits of node {node} must be a list, not {traits!r}.")
    for trait in traits:
        if not isinstance(trait, str) or not 0 < len(trait) <= 255:
            raise exception.InvalidParameterValue(
                err=f"Invalid trait {trait!r} for node {node}: expected a string of 1 to 255 characters."
            )
    return sorted(set(traits))


def replace_traits(node: Node, traits: list[str]) -> None:
    """Make the (session-bound) node's trait rows ``traits``, keeping the rows that stay."""
    wanted = set(traits)
    node.trait_rows = [row for row in node.trait_rows if row.trait in wanted]
    have = {row.trait for row in node.trait_rows}
    node.trait_rows.extend(NodeTrait(trait=t) for t in sorted(wanted - have))


def flush(sess: Session, table: str, conflicts: Conflicts) -> None:
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


def port_conflicts(values: dict[str, Any]) -> Conflicts:
    """The Kiln errors of a port's unique columns (address, uuid, name) for ``flush``."""
    return {
        "address": lambda: exception.MACAlreadyExists(mac=values.get("address")),
        "uuid": lambda: db_exc.PortAlreadyExists(uuid=values.get("uuid")),
        "name": lambda: db_exc.PortDuplicateName(name=values.get("name")),
    }


def node_where(ident: str) -> ColumnElement[bool]:
    """The WHERE clause of the node with UUID or name ``ident``."""
    if not isinstance(ident, str) or not ident:
        raise exception.InvalidParameterValue(
            err=f"Invalid node identifier {ident!r}: expected a UUID or name."
        )
    if uuidutils.is_uuid_like(ident):
        return Node.uuid == ident.lower()
    return Node.name == ident


def ident_where(ident: str | int) -> ColumnElement[bool]:
    """The WHERE clause of the node with database id, UUID or name ``ident``."""
    return Node.id == ident if isinstance(ident, int) and not isinstance(ident, bool) else node_where(ident)


def load_node(sess: Session, ident: str | int) -> Node:
    """The node with database id, UUID or name ``ident``, in ``sess``; NodeNotFound otherwise."""
    if isinstance(ident, int):
        node = sess.get(Node, ident)
    else:
        node = sess.scalars(select(Node).where(node_where(ident))).one_or_none()
    if node is None:
        raise exception.NodeNotFound(node=ident)
    return node


def node_id_of(sess: Session, node: int | str) -> int:
    """The database id of the node with id, UUID or name ``node``; NodeNotFound when there is none."""
    if isinstance(node, int):
        if sess.scalar(select(Node.id).where(Node.id == node)) is None:
            raise exception.NodeNotFound(node=node)
        return node
    node_id = sess.scalar(select(Node.id).where(node_where(node)))
    if node_id is None:
        raise exception.NodeNotFound(node=node)
    return node_id


def resolve_node_id(sess: Session, values: dict[str, Any]) -> None:
    """Turn ``values["node_id"]`` (an id, UUID or name), when set, into the node's database id, in place."""
    if values.get("node_id") is not None:
        values["node_id"] = node_id_of(sess, values["node_id"])


def new_row_values(model: type, values: dict[str, Any], kind: str) -> dict[str, Any]:
    """A copy of ``values`` for a new ``kind`` row: only ``model``'s columns, its UUID checked or made."""
    values = dict(values)
    check_columns(model, values, kind)
    values["uuid"] = check_uuid(values.get("uuid") or uuidutils.generate_uuid(), "uuid", kind)
    return values


def add_row(sess: Session, row: Any, table: str, conflicts: Conflicts) -> Any:
    """Add ``row`` to the session and flush it (unique violations become ``conflicts``' errors); return it."""
    sess.add(row)
    flush(sess, table, conflicts)
    return row


def find_row(sess: Session, model: type, ident: Any, kind: str, not_found: Callable[[], Exception]) -> Any:
    """The ``model`` row with UUID or name ``ident``; ``not_found()`` is raised when there is none."""
    if not isinstance(ident, str) or not ident:
        raise exception.InvalidParameterValue(
            err=f"Invalid {kind} identifier {ident!r}: expected a UUID or name."
        )
    if uuidutils.is_uuid_like(ident):
        where = model.uuid == ident.lower()
    else:
        where = model.name == ident
    row = sess.scalars(select(model).where(where)).one_or_none()
    if row is None:
        raise not_found()
    return row


def update_row(
    find: Callable[[Session], Any], values: dict[str, Any], table: str, conflicts: Conflicts
) -> Any:
    """Set ``values`` on the row ``find`` returns, in one transaction; return the row.

    A ``node_id`` among them may be a node's id, UUID or name; a unique violation becomes
    ``conflicts``' error.
    """
    with db_engine.session(write=True) as sess:
        resolve_node_id(sess, values)
        row = find(sess)
        for key, value in values.items():
            setattr(row, key, value)
        flush(sess, table, conflicts)
    return row


def delete_row(find: Callable[[Session], Any]) -> None:
    """Delete the row ``find`` returns (it raises when there is none)."""
    with db_engine.session(write=True) as sess:
        sess.delete(find(sess))


def marker_row(sess: Session, model: type, marker: str | None, kind: str) -> Any:
    """The row with UUID ``marker`` that a page of ``model`` starts after (None: from the start)."""
    if marker is None:
        return None
    row = sess.scalars(select(model).where(model.uuid == str(marker).lower())).one_or_none()
    if row is None:
        raise exception.InvalidParameterValue(err=f"Marker {kind} {marker} could not be found.")
    return row


def list_page(
    sess: Session,
    query: Select,
    model: type,
    kind: str,
    limit: Any,
    marker: Any,
    sort_key: str,
    sort_dir: str,
) -> list:
    """One page of ``query``'s ``kind`` rows: ``limit`` of them after the one with UUID ``marker``, sorted."""
    start = marker_row(sess, model, marker, kind)
    return list(sess.scalars(paginate(query, model, limit, start, sort_key, sort_dir)))


def bool_filter(value: Any, name: str) -> bool:
    """A boolean filter's value; InvalidParameterValue when it is not true or false."""
    if not isinstance(value, bool):
        raise exception.InvalidParameterValue(err=f"Filter {name} must be true or false, not {value!r}.")
    return value


def where_filters(
    query: Select, filters: dict[str, Any] | None, handlers: dict[str, Callable], what: str
) -> Select:
    """``query`` narrowed by each filter's handler; InvalidParameterValue naming the known ones for others."""
    for key, value in (filters or {}).items():
        handler = handlers.get(key)
        if handler is None:
            raise exception.InvalidParameterValue(
                err=f"Unknown {what} filter {key!r}; known filters: {', '.join(sorted(handlers))}."
            )
        query = query.where(handler(value))
    return query


def equals(column: Any) -> Callable:
    """A filter handler: ``column`` equals the value."""
    return lambda value: column == value


def one_of(column: Any, name: str) -> Callable:
    """A filter handler: ``column`` is one of the values (a list; InvalidParameterValue otherwise)."""

    def build(values: Any) -> ColumnElement[bool]:
        if isinstance(values, str) or not isinstance(values, list | tuple | set):
            raise exception.InvalidParameterValue(err=f"Filter {name} must be a list, not {values!r}.")
        return column.in_(list(values))

    return build


def list_node_rows(
    model: Any,
    query: Select,
    node_id: int | str | None,
    what: str,
    limit: int | None,
    marker: str | None,
    sort_key: str,
    sort_dir: str,
) -> list:
    """A page of ``query``'s ``model`` rows; only one node's when ``node_id`` (id, UUID, name) is set."""
    with db_engine.session() as sess:
        if node_id is not None:
            query = query.where(model.node_id == node_id_of(sess, node_id))
        return list_page(sess, query, model, what, limit, marker, sort_key, sort_dir)
