"""Reads the API makes straight from the database, limited to what the caller's project may see."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select

from agent.api import base, errors, policy
from agent.common import exception
from agent.db import api as db_api
from agent.db import engine as db_engine
from agent.db import node_list
from agent.db.models import Allocation, Node

_CHUNK = 500


def scope(req: base.ApiRequest) -> str | None:
    """The project whose nodes the caller may see, or None when policy lets it list every node."""
    if policy.check(req, "baremetal:node:list_all"):
        return None
    if not req.context.get("project_id") or not policy.check(req, "baremetal:node:list"):
        raise errors.HTTPForbidden(
            "Access was denied: the request carries neither a project with a reader role nor a "
            "system scope (policies baremetal:node:list and baremetal:node:list_all)."
        )
    return req.context["project_id"]


def visible(node: Any, project: str | None) -> bool:
    """Whether ``node`` (ORM or dict) is visible to ``project`` (None: everything is)."""
    if project is None:
        return True
    get = node.get if isinstance(node, dict) else lambda k: getattr(node, k)
    return project in (get("owner"), get("lessee"))


def get_node(req: base.ApiRequest, ident: str) -> Node:
    """The node ``ident`` (UUID or name) the caller may see: 404 otherwise, 403 without baremetal:node:get."""
    try:
        node = db_api.get_node(ident)
    except exception.InvalidParameterValue:
        raise exception.NodeNotFound(node=ident) from None
    if not visible(node, scope(req)):
        raise exception.NodeNotFound(node=ident)
    policy.authorize(req, "baremetal:node:get", node)
    return node


def node_for_owner_only(req: base.ApiRequest, node: Node, action: str) -> None:
    """403 unless policy kiln:node:owner_action lets the caller ``action`` (owner members and the system)."""
    policy.authorize(req, "kiln:node:owner_action", node, action)


def _project_node_uuids(project: str) -> list[str]:
    with db_engine.session() as sess:
        return list(sess.scalars(select(Node.uuid).where(or_(Node.owner == project, Node.lessee == project))))


def _scoped(req: base.ApiRequest, filters: dict) -> dict:
    project = scope(req)
    if project is not None:
        allowed = _project_node_uuids(project)
        if "uuid_in" in filters:
            allowed = [u for u in allowed if u in set(filters["uuid_in"])]
        filters = {**filters, "uuid_in": allowed}
    return filters


def list_nodes(req: base.ApiRequest, filters: dict, **page: Any) -> list[Node]:
    """db_api.list_nodes restricted to the caller's project."""
    return db_api.list_nodes(filters=_scoped(req, filters), **page)


def list_node_dicts(req: base.ApiRequest, filters: dict, **page: Any) -> list[dict]:
    """node_list.list_node_dicts (nodes as node_to_dict makes them) restricted to the caller's project."""
    return node_list.list_node_dicts(filters=_scoped(req, filters), **page)


def node_uuids(ids: Iterable[int | None]) -> dict[int, str]:
    """Map node ids to UUIDs."""
    wanted = sorted({i for i in ids if i is not None})
    found: dict[int, str] = {}
    with db_engine.session() as sess:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            found.update(sess.execute(select(Node.id, Node.uuid).where(Node.id.in_(chunk))).all())
    return found


def allocation_uuids(node_ids: Iterable[int]) -> dict[int, str]:
    """Map node ids to the UUID of the allocation holding each node."""
    wanted = sorted(set(node_ids))
    found: dict[int, str] = {}
    with db_engine.session() as sess:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows = sess.execute(
                select(Allocation.node_id, Allocation.uuid).where(Allocation.node_id.in_(chunk))
            )
            found.update(rows.all())
    return found


def visible_rows(req: base.ApiRequest, rows: list, node: Any, uuids: dict[int, str]) -> list:
    """``rows`` (each with a node_id) whose node the caller may see; all of them for an admin or ``node``."""
    if node is not None or scope(req) is None:
        return rows
    allowed = {n.id for n in list_nodes(req, {"uuid_in": list(uuids.values())})}
    return [r for r in rows if r.node_id in allowed]


def page(req: base.ApiRequest, lister: Any, node: Any, filters: dict, limit: int | None, sort: tuple) -> list:
    """One page of ``lister``'s rows (of ``node`` when given) by marker and sort; 400 naming what is wrong."""
    try:
        return lister(
            node_id=node.id if node is not None else None,
            filters=filters,
            limit=limit,
            marker=req.GET.get("marker"),
            sort_key=sort[0],
            sort_dir=sort[1],
        )
    except exception.InvalidParameterValue as exc:
        raise errors.HTTPBadRequest(str(exc)) from None
