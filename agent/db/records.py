"""Create, read, list, update and delete of the simple resources (chassis, volume connectors and
targets, deploy templates): rows found by UUID (or name where the table has one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oslo_utils import uuidutils
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.common import exception
from agent.db import engine as db_engine
from agent.db.common import (
    Conflicts,
    add_row,
    check_update,
    find_row,
    list_page,
    new_row_values,
    node_id_of,
    resolve_node_id,
    update_row,
    where_filters,
)


@dataclass(frozen=True)
class Store:
    """The database operations of one resource ``kind`` kept in ``model``'s table."""

    model: type
    kind: str
    table: str
    not_found: Callable[[Any], exception.KilnException]
    unique: tuple[str, ...] = ("uuid",)

    def conflicts(self, values: dict[str, Any]) -> Conflicts:
        """The errors of the unique columns, naming the value that clashed."""
        return {
            col: (lambda c=col: exception.ResourceAlreadyExists(kind=self.kind, what=f"{c} {values.get(c)}"))
            for col in self.unique
        }

    def _get(self, sess: Session, ident: str) -> Any:
        if not hasattr(self.model, "name"):
            if not isinstance(ident, str) or not uuidutils.is_uuid_like(ident):
                raise self.not_found(ident)
        try:
            return find_row(sess, self.model, ident, self.kind, lambda: self.not_found(ident))
        except exception.InvalidParameterValue:
            raise self.not_found(ident) from None

    def create(self, values: dict[str, Any]) -> Any:
        """Insert a row (its ``node_id`` may be a node's id, UUID or name); return it."""
        values = new_row_values(self.model, values, self.kind)
        with db_engine.session(write=True) as sess:
            resolve_node_id(sess, values)
            return add_row(sess, self.model(**values), self.table, self.conflicts(values))

    def get(self, ident: str) -> Any:
        """The row with UUID (or name) ``ident``; the resource's NotFound otherwise."""
        with db_engine.session() as sess:
            return self._get(sess, ident)

    def list(
        self,
        filters: dict[str, Any] | None = None,
        handlers: dict[str, Callable] | None = None,
        node_id: int | str | None = None,
        limit: int | None = None,
        marker: str | None = None,
        sort_key: str = "id",
        sort_dir: str = "asc",
    ) -> list:
        """One page of rows (of one node when ``node_id`` is given), filtered by ``handlers``."""
        query = where_filters(select(self.model), filters, handlers or {}, self.kind)
        with db_engine.session() as sess:
            if node_id is not None:
                query = query.where(self.model.node_id == node_id_of(sess, node_id))
            return list_page(sess, query, self.model, self.kind, limit, marker, sort_key, sort_dir)

    def update(self, ident: str, values: dict[str, Any]) -> Any:
        """Set ``values`` on the row; return it."""
        values = dict(values)
        check_update(self.model, values, self.kind, ident)
        return update_row(lambda sess: self._get(sess, ident), values, self.table, self.conflicts(values))

    def destroy(self, ident: str, check: Callable[[Session, Any], None] | None = None) -> None:
        """Delete the row, after ``check(session, row)`` (which raises to refuse) when given."""
        with db_engine.session(write=True) as sess:
            row = self._get(sess, ident)
            if check is not None:
                check(sess, row)
            sess.delete(row)
