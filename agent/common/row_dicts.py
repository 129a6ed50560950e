"""Plain-dict views of database rows, as the conductor hands them over RPC and the API shows them."""

from __future__ import annotations

import datetime
from typing import Any

#: Node columns never shown outside the database layer.
NODE_HIDDEN = frozenset({"agent_token_hash"})
_NODE_HIDDEN = NODE_HIDDEN


def plain_value(value: Any) -> Any:
    """A column value as the API shows it: datetimes as UTC ISO strings, anything else unchanged."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.isoformat()
    return value


_KEYS: dict[tuple[str, frozenset[str]], tuple[str, ...]] = {}


def _row_to_dict(row: Any, hidden: frozenset[str] = frozenset()) -> dict[str, Any]:
    table = row.__table__
    keys = _KEYS.get((table.name, hidden))
    if keys is None:
        keys = _KEYS[(table.name, hidden)] = tuple(c.key for c in table.columns if c.key not in hidden)
    values = {key: getattr(row, key) for key in keys}
    for key, value in values.items():
        if isinstance(value, datetime.datetime):
            values[key] = plain_value(value)
    return values


def values_to_dict(keys: tuple[str, ...], values: Any) -> dict[str, Any]:
    """``keys`` paired with a row's ``values`` (a Core row), datetimes as UTC ISO strings."""
    out = dict(zip(keys, values, strict=True))
    for key, value in out.items():
        if isinstance(value, datetime.datetime):
            out[key] = plain_value(value)
    return out


def node_to_dict(node: Any) -> dict[str, Any]:
    """Every column of a node (no agent token hash), datetimes as ISO strings, plus its ``traits``."""
    values = _row_to_dict(node, _NODE_HIDDEN)
    values["traits"] = list(node.traits)
    return values


def port_to_dict(port: Any) -> dict[str, Any]:
    """Every column of a port, datetimes as ISO strings."""
    return _row_to_dict(port)


def portgroup_to_dict(portgroup: Any) -> dict[str, Any]:
    """Every column of a portgroup, datetimes as ISO strings."""
    return _row_to_dict(portgroup)


def allocation_to_dict(allocation: Any) -> dict[str, Any]:
    """Every column of an allocation, datetimes as ISO strings."""
    return _row_to_dict(allocation)


def conductor_to_dict(conductor: Any) -> dict[str, Any]:
    """Every column of a conductor row, datetimes as ISO strings."""
    return _row_to_dict(conductor)


def row_to_dict(row: Any) -> dict[str, Any]:
    """Every column of any row, datetimes as ISO strings."""
    return _row_to_dict(row)
