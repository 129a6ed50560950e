"""Keyset pagination as Ironic's API does it: limit, marker (the last item seen), sort key and direction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Select, and_, case, or_

from agent.common import exception


def sortable_columns(model: type) -> list[str]:
    """Columns a list may be sorted by: every column but the JSON ones."""
    return sorted(c.key for c in model.__table__.columns if not isinstance(c.type, JSON))


def _check(model: type, limit: Any, sort_key: Any, sort_dir: Any) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise exception.InvalidParameterValue(err=f"Invalid limit {limit!r}: expected a positive integer.")
    allowed = sortable_columns(model)
    if sort_key not in allowed:
        raise exception.InvalidParameterValue(
            err=f"Invalid sort_key {sort_key!r} for {model.__tablename__}; allowed: {', '.join(allowed)}."
        )
    if sort_dir not in ("asc", "desc"):
        raise exception.InvalidParameterValue(err=f"Invalid sort_dir {sort_dir!r}: expected 'asc' or 'desc'.")


def paginate(
    query: Select, model: type, limit: int | None, marker: Any, sort_key: str, sort_dir: str
) -> Select:
    """Order ``query`` by ``sort_key`` then id, start after ``marker`` (an ORM row), take ``limit``.

    NULLs sort first ascending and last descending on every backend (PostgreSQL would differ).
    """
    _check(model, limit, sort_key, sort_dir)
    col = getattr(model, sort_key)
    ident = model.id
    is_null = case((col.is_(None), 0), else_=1)
    if sort_dir == "asc":
        query = query.order_by(is_null.asc(), col.asc(), ident.asc())
    else:
        query = query.order_by(is_null.desc(), col.desc(), ident.desc())
    if marker is not None:
        value, marker_id = getattr(marker, sort_key), marker.id
        if sort_key == "id":
            after = ident > marker_id if sort_dir == "asc" else ident < marker_id
        elif sort_dir == "asc":
            after = (
                or_(and_(col.is_(None), ident > marker_id), col.is_not(None))
                if value is None
                else or_(col > value, and_(col == value, ident > marker_id))
            )
        else:
            after = (
                and_(col.is_(None), ident < marker_id)
                if value is None
                else or_(col < value, and_(col == value, ident < marker_id), col.is_(None))
            )
        query = query.where(after)
    if limit is not None:
        query = query.limit(limit)
    return query
