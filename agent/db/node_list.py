"""The API's node lists as plain dicts, read with Core rows instead of ORM objects.

A page of 1,000 nodes built as ORM objects (identity map, instrumented attributes, a selectin
load of the traits) and then copied into dicts cost about a third of ``GET /v1/nodes/detail``
(bench.fleet_sim). Here the same query (filters, marker, sort) selects the node columns as
tuples, the page's traits come in one more query, and each node becomes the dict
agent.common.row_dicts.node_to_dict would make of it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from agent.common import row_dicts
from agent.db import engine as db_engine
from agent.db.api import _NODE_FILTERS
from agent.db.common import marker_row, where_filters
from agent.db.models import Node, NodeTrait
from agent.db.query import paginate

_CHUNK = 500
_COLUMNS = tuple(c for c in Node.__table__.columns if c.key not in row_dicts.NODE_HIDDEN)
_KEYS = tuple(c.key for c in _COLUMNS)


def list_node_dicts(
    filters: dict[str, Any] | None = None,
    limit: int | None = None,
    marker: str | None = None,
    sort_key: str = "id",
    sort_dir: str = "asc",
) -> list[dict[str, Any]]:
    """db_api.list_nodes's page, each node as row_dicts.node_to_dict makes it (with its traits)."""
    query = where_filters(select(Node), filters, _NODE_FILTERS, "node")
    with db_engine.session() as sess:
        start = marker_row(sess, Node, marker, "node")
        stmt = paginate(query, Node, limit, start, sort_key, sort_dir).with_only_columns(*_COLUMNS)
        rows = sess.execute(stmt).all()
        nodes = [row_dicts.values_to_dict(_KEYS, row) for row in rows]
        traits: dict[int, list[str]] = {n["id"]: [] for n in nodes}
        ids = list(traits)
        for first in range(0, len(ids), _CHUNK):
            found = sess.execute(
                select(NodeTrait.node_id, NodeTrait.trait)
                .where(NodeTrait.node_id.in_(ids[first : first + _CHUNK]))
                .order_by(NodeTrait.node_id, NodeTrait.trait)
            )
            for node_id, trait in found:
                traits[node_id].append(trait)
    for node in nodes:
        node["traits"] = traits[node["id"]]
    return nodes
