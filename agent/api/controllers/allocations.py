"""/v1/allocations (1.52): a node picked by resource class and traits, with owner (1.60)."""

from __future__ import annotations

from typing import Any

import webob
from oslo_utils import uuidutils

from agent.api import base, dbread, errors, policy, validation, versions, views
from agent.api.router import Router
from agent.api.validation import LIST, NAME, OBJECT, STRING, UUID
from agent.common import exception, row_dicts
from agent.db import api as db_api
from agent.db import exceptions as db_exc
from agent.db.models import Allocation
from agent.db.query import sortable_columns

CREATE: dict[str, tuple[int, str]] = {
    "uuid": (versions.ALLOCATIONS, UUID),
    "name": (versions.ALLOCATIONS, NAME),
    "resource_class": (versions.ALLOCATIONS, STRING),
    "traits": (versions.ALLOCATIONS, LIST),
    "candidate_nodes": (versions.ALLOCATIONS, LIST),
    "extra": (versions.ALLOCATIONS, OBJECT),
    "owner": (versions.ALLOCATION_OWNER, STRING),
}
PATCHABLE = {"name": NAME, "extra": OBJECT}
SORT_KEYS = sorted(set(sortable_columns(Allocation)) - {"node_id", "conductor_affinity"})


def _render(req: base.ApiRequest, alloc: Any, fields=None) -> dict:
    data = alloc if isinstance(alloc, dict) else row_dicts.allocation_to_dict(alloc)
    node_uuid = dbread.node_uuids([data.get("node_id")]).get(data.get("node_id"))
    return views.allocation_view(req, data, node_uuid, fields)


def _get(req: base.ApiRequest, ident: str) -> Any:
    alloc = db_api.get_allocation(ident)
    project = dbread.scope(req)
    if project is not None and alloc.owner != project:
        raise db_exc.AllocationNotFound(allocation=ident)
    return alloc


def list_allocations(req: base.ApiRequest) -> webob.Response:
    """GET /v1/allocations."""
    base.require_version(req, versions.ALLOCATIONS)
    fields = views.check_fields(req, views.ALLOCATION_FIELDS)
    limit = base.parse_limit(req)
    sort_key, sort_dir = base.parse_sort(req, SORT_KEYS)
    filters: dict[str, Any] = {}
    for param in ("resource_class", "state", "owner"):
        if param in req.GET:
            if param == "owner":
                base.feature_version(req, versions.ALLOCATION_OWNER, "Filtering allocations by owner")
            filters[param] = req.GET[param]
    if "node" in req.GET:
        filters["node_id"] = dbread.get_node(req, req.GET["node"]).id
    project = dbread.scope(req)
    if project is not None:
        if filters.get("owner") not in (None, project):
            return base.json_response({"allocations": []})
        filters["owner"] = project
    try:
        rows = db_api.list_allocations(
            filters=filters, limit=limit, marker=req.GET.get("marker"), sort_key=sort_key, sort_dir=sort_dir
        )
    except exception.InvalidParameterValue as exc:
        raise errors.HTTPBadRequest(str(exc)) from None
    uuids = dbread.node_uuids(a.node_id for a in rows)
    items = [
        views.allocation_view(req, row_dicts.allocation_to_dict(a), uuids.get(a.node_id), fields)
        for a in rows
    ]
    last = rows[-1].uuid if rows else None
    return base.json_response(base.collection(req, "allocations", items, last, limit, "allocations"))


def get_allocation(req: base.ApiRequest, allocation_ident: str) -> webob.Response:
    """GET /v1/allocations/{allocation}."""
    base.require_version(req, versions.ALLOCATIONS)
    fields = views.check_fields(req, views.ALLOCATION_FIELDS)
    return base.json_response(_render(req, _get(req, allocation_ident), fields))


def create_allocation(req: base.ApiRequest) -> webob.Response:
    """POST /v1/allocations: 201 with the allocation in state "allocating"."""
    base.require_version(req, versions.ALLOCATIONS)
    body = base.json_object(req, "an allocation")
    if "node" in body:
        raise errors.HTTPBadRequest("Backfilling allocations (the node field) is not supported by Kiln.")
    values = validation.check_fields(req, "allocation", body, CREATE, required=("resource_class",))
    if len(values["resource_class"]) > 80:
        raise errors.HTTPBadRequest("Allocation field resource_class is longer than 80 characters.")
    if values.get("name") and uuidutils.is_uuid_like(values["name"]):
        raise errors.HTTPBadRequest(
            f"The allocation name {values['name']!r} looks like a UUID; pick another name."
        )
    values["traits"] = validation.check_traits(values.get("traits") or [], "Allocation")
    candidates = []
    for ident in values.get("candidate_nodes") or []:
        try:
            candidates.append(dbread.get_node(req, ident).uuid)
        except exception.NodeNotFound:
            raise errors.HTTPBadRequest(f"Candidate node {ident} could not be found.") from None
    values["candidate_nodes"] = candidates
    project = dbread.scope(req)
    if project is not None:
        if values.get("owner") not in (None, project):
            raise errors.HTTPForbidden(
                f"A project-scoped caller can only create allocations owned by {project}."
            )
        values["owner"] = project
    policy.authorize(req, "baremetal:allocation:create")
    values["uuid"] = values.get("uuid") or uuidutils.generate_uuid()  # null: generated, as Ironic does
    values.setdefault("extra", {})
    alloc = req.rpcapi.create_allocation(req.context, values)
    headers = {"Location": base.links(req, "allocations", alloc["uuid"])[0]["href"]}
    return base.json_response(_render(req, alloc), status=201, headers=headers)


def patch_allocation(req: base.ApiRequest, allocation_ident: str) -> webob.Response:
    """PATCH /v1/allocations/{allocation} (1.57): name and extra only."""
    base.require_version(req, versions.ALLOCATIONS)
    base.feature_version(req, versions.ALLOCATION_UPDATE, "Updating allocations")
    alloc = _get(req, allocation_ident)
    doc = _render(req, alloc)
    readonly = {"/" + f for f in doc if f not in PATCHABLE}
    patched = validation.apply_patch(req, "allocation", doc, base.json_body(req), readonly, set())
    changed = {}
    for field, kind in PATCHABLE.items():
        new = patched.get(field)
        if new != doc.get(field):
            changed[field] = validation.check_value(
                "Allocation", field, kind, {} if kind == OBJECT and new is None else new
            )
    if not changed:
        return base.json_response(doc)
    return base.json_response(_render(req, req.rpcapi.update_allocation(req.context, alloc.uuid, changed)))


def delete_allocation(req: base.ApiRequest, allocation_ident: str) -> webob.Response:
    """DELETE /v1/allocations/{allocation}: 204."""
    base.require_version(req, versions.ALLOCATIONS)
    alloc = _get(req, allocation_ident)
    policy.authorize(req, "baremetal:allocation:delete")
    node = db_api.get_node_by_id(alloc.node_id) if alloc.node_id is not None else None
    req.rpcapi.destroy_allocation(req.context, alloc.uuid, node)
    return base.no_content()


def _node_allocation(req: base.ApiRequest, node_ident: str) -> tuple[Any, Any]:
    node = dbread.get_node(req, node_ident)
    found = db_api.list_allocations(filters={"node_id": node.id}, limit=1)
    if not found:
        raise errors.HTTPNotFound(f"Node {node.uuid} has no allocation.")
    return node, found[0]


def get_node_allocation(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/allocation."""
    base.require_version(req, versions.ALLOCATIONS)
    fields = views.check_fields(req, views.ALLOCATION_FIELDS)
    _node, alloc = _node_allocation(req, node_ident)
    return base.json_response(_render(req, alloc, fields))


def delete_node_allocation(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """DELETE /v1/nodes/{node}/allocation: 204."""
    base.require_version(req, versions.ALLOCATIONS)
    node, alloc = _node_allocation(req, node_ident)
    policy.authorize(req, "baremetal:allocation:delete", node)
    req.rpcapi.destroy_allocation(req.context, alloc.uuid, node)
    return base.no_content()


def register(router: Router) -> None:
    """Add the allocation routes."""
    router.add("GET", "/v1/allocations", list_allocations)
    router.add("POST", "/v1/allocations", create_allocation)
    router.add("GET", "/v1/allocations/{allocation_ident}", get_allocation)
    router.add("PATCH", "/v1/allocations/{allocation_ident}", patch_allocation)
    router.add("DELETE", "/v1/allocations/{allocation_ident}", delete_allocation)
    router.add("GET", "/v1/nodes/{node_ident}/allocation", get_node_allocation)
    router.add("DELETE", "/v1/nodes/{node_ident}/allocation", delete_node_allocation)
