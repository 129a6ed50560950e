"""/v1/nodes: create, list (/detail), show, PATCH, delete."""

from __future__ import annotations

from typing import Any

import webob
from oslo_utils import uuidutils

from agent.api import base, dbread, errors, gcpause, policy, validation, versions, views
from agent.api.router import Router
from agent.api.validation import BOOL, GROUP, NAME, OBJECT, STRING, UUID
from agent.common import exception, row_dicts, secrets
from agent.db import api as db_api
from agent.db import chassis as db_chassis
from agent.db.models import Node
from agent.db.query import sortable_columns

_IFACE = {f"{i}_interface": (31, STRING) for i in ("boot", "console", "deploy", "inspect", "management")}
_IFACE.update({f"{i}_interface": (31, STRING) for i in ("power", "raid", "vendor")})

# Fields a client may set (create and PATCH): minor version, kind.
WRITABLE: dict[str, tuple[int, str]] = {
    "uuid": (1, UUID),
    "driver": (1, STRING),
    "driver_info": (1, OBJECT),
    "extra": (1, OBJECT),
    "instance_info": (1, OBJECT),
    "instance_uuid": (1, UUID),
    "chassis_uuid": (1, UUID),
    "properties": (1, OBJECT),
    "maintenance": (1, BOOL),
    "maintenance_reason": (1, STRING),
    "name": (5, NAME),
    "network_interface": (20, STRING),
    "resource_class": (21, STRING),
    **_IFACE,
    "storage_interface": (33, STRING),
    "rescue_interface": (38, STRING),
    "bios_interface": (40, STRING),
    "conductor_group": (46, GROUP),
    "automated_clean": (47, BOOL),
    "protected": (48, BOOL),
    "protected_reason": (48, STRING),
    "owner": (50, STRING),
    "description": (51, STRING),
    "retired": (61, BOOL),
    "retired_reason": (61, STRING),
    "lessee": (65, STRING),
    "shard": (versions.SHARDS, STRING),
    "firmware_interface": (versions.FIRMWARE, STRING),
    "instance_name": (versions.INSTANCE_NAME, STRING),
}
_CREATE_ONLY_ABSENT = ("maintenance", "maintenance_reason")
READONLY = {"/" + f for f in views.NODE_FIELDS if f not in WRITABLE} | {"/id"}
MANDATORY = {"/driver"}
_PATCH_MESSAGES = {
    "/traits": "Cannot update node traits via node patch. Node traits should be updated via the node "
    "traits API (PUT /v1/nodes/{node}/traits).",
    "/network_data": "Kiln does not store network_data on nodes; put it in the configdrive instead.",
}
SORT_KEYS = sorted(set(sortable_columns(Node)) - {"agent_token_hash", "system_uuid", "conductor_affinity"})

# Query filters: parameter -> (minor version, db filter name, bool?).
_FILTERS: dict[str, tuple[int, str, bool]] = {
    "instance_uuid": (1, "instance_uuid", False),
    "associated": (1, "associated", True),
    "maintenance": (1, "maintenance", True),
    "provision_state": (versions.PROVISION_STATE_FILTER, "provision_state", False),
    "driver": (versions.DRIVER_FILTER, "driver", False),
    "resource_class": (versions.RESOURCE_CLASS, "resource_class", False),
    "fault": (42, "fault", False),
    "conductor_group": (versions.CONDUCTOR_GROUP, "conductor_group", False),
    "owner": (versions.OWNER, "owner", False),
    "retired": (versions.RETIRED, "retired", True),
    "lessee": (versions.LESSEE, "lessee", False),
    "shard": (versions.SHARDS, "shard", False),
    "instance_name": (versions.INSTANCE_NAME, "instance_name", False),
}


def conductor_of(req: base.ApiRequest, node: Any) -> str | None:
    """The conductor managing ``node``, or None when none is alive for its group."""
    try:
        return req.rpcapi.conductor_for(node)
    except exception.ConductorNotFound:
        return None


def render(req: base.ApiRequest, node: Any, fields: list[str] | tuple[str, ...] | None = None) -> dict:
    """The API view of one node (an ORM row or a node dict)."""
    data = node if isinstance(node, dict) else row_dicts.node_to_dict(node)
    data["chassis_uuid"] = db_chassis.chassis_uuids([data.get("chassis_id")]).get(data.get("chassis_id"))
    alloc = None
    if req.at_least(versions.ALLOCATIONS) and (fields is None or "allocation_uuid" in fields):
        alloc = dbread.allocation_uuids([data["id"]]).get(data["id"])
    cond = None
    if req.at_least(versions.CONDUCTORS) and (fields is None or "conductor" in fields):
        cond = conductor_of(req, data)
    return views.node_view(req, data, fields, allocation_uuid=alloc, conductor=cond)


def _filters(req: base.ApiRequest) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for param, (minor, name, is_bool) in _FILTERS.items():
        raw = req.GET.get(param)
        if raw is None:
            continue
        base.feature_version(req, minor, f"Filtering nodes by {param}")
        filters[name] = base.parse_bool(raw, param) if is_bool else raw
    if "conductor_group" in filters:
        filters["conductor_group"] = filters["conductor_group"].lower()
    return filters


def _list(req: base.ApiRequest, detail: bool, path: str, extra_filters: dict | None = None) -> webob.Response:
    with gcpause.paused():
        return _list_page(req, detail, path, extra_filters)


def _list_page(req: base.ApiRequest, detail: bool, path: str, extra_filters: dict | None) -> webob.Response:
    if detail and "fields" in req.GET:
        raise errors.HTTPBadRequest("Can not specify ?detail=True and fields in the same request.")
    fields = views.check_fields(req, views.NODE_FIELDS)
    if fields is None and not detail:
        fields = list(views.NODE_LIST_FIELDS)
    limit = base.parse_limit(req)
    sort_key, sort_dir = base.parse_sort(req, SORT_KEYS)
    filters = {**_filters(req), **(extra_filters or {})}
    marker = req.GET.get("marker")
    try:
        dicts = dbread.list_node_dicts(
            req, filters, limit=limit, marker=marker, sort_key=sort_key, sort_dir=sort_dir
        )
    except exception.InvalidParameterValue as exc:
        raise errors.HTTPBadRequest(str(exc)) from None
    chassis = db_chassis.chassis_uuids([d.get("chassis_id") for d in dicts])
    for d in dicts:
        d["chassis_uuid"] = chassis.get(d.get("chassis_id"))
    allocs: dict[int, str] = {}
    if req.at_least(versions.ALLOCATIONS) and (fields is None or "allocation_uuid" in fields):
        allocs = dbread.allocation_uuids(d["id"] for d in dicts)
    want_conductor = req.at_least(versions.CONDUCTORS) and (fields is None or "conductor" in fields)
    items = [
        views.node_view(
            req,
            d,
            fields,
            allocation_uuid=allocs.get(d["id"]),
            conductor=conductor_of(req, d) if want_conductor else None,
        )
        for d in dicts
    ]
    last = dicts[-1]["uuid"] if dicts else None
    return base.json_response(base.collection(req, "nodes", items, last, limit, path))


def list_filtered(req: base.ApiRequest, detail: bool, path: str, filters: dict) -> webob.Response:
    """A node list narrowed by database ``filters`` (a chassis's nodes)."""
    return _list(req, detail, path, filters)


def list_nodes(req: base.ApiRequest) -> webob.Response:
    """GET /v1/nodes (detail=True from 1.43)."""
    return _list(req, base.detail_query(req), "nodes")


def list_nodes_detail(req: base.ApiRequest) -> webob.Response:
    """GET /v1/nodes/detail."""
    if "detail" in req.GET:
        raise errors.HTTPBadRequest("The detail query parameter is not accepted on /v1/nodes/detail.")
    return _list(req, True, "nodes/detail")


def get_node(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node_ident}."""
    fields = views.check_fields(req, views.NODE_FIELDS)
    node = dbread.get_node(req, node_ident)
    return base.json_response(render(req, node, fields))


def _check_node_values(values: dict, what: str) -> dict:
    if "chassis_uuid" in values:
        ident = values.pop("chassis_uuid")
        try:
            values["chassis_id"] = db_chassis.chassis_id(ident) if ident else None
        except exception.ChassisNotFound as exc:
            raise errors.HTTPBadRequest(f"Cannot put the {what} in a chassis: {exc}") from None
    if values.get("name") and uuidutils.is_uuid_like(values["name"]):
        raise errors.HTTPBadRequest(
            f"The {what} name {values['name']!r} looks like a UUID; pick another name."
        )
    if "resource_class" in values and values["resource_class"] and len(values["resource_class"]) > 80:
        raise errors.HTTPBadRequest("Node field resource_class is longer than 80 characters.")
    return values


def create_node(req: base.ApiRequest) -> webob.Response:
    """POST /v1/nodes: 201 with the node (enroll from 1.11, available before)."""
    body = base.json_object(req, "a node")
    present = [f for f in _CREATE_ONLY_ABSENT if f in body]
    if present:
        raise errors.HTTPBadRequest(
            f"Unknown field(s) in the node: {', '.join(present)}; set maintenance with "
            "PUT /v1/nodes/{node}/maintenance after creating the node."
        )
    values = validation.check_fields(req, "node", body, WRITABLE, required=("driver",))
    values = _check_node_values(values, "node")
    project = policy.creating_project(req)
    if project is not None:
        # 1.80: a project-scoped caller creates nodes it owns.
        base.feature_version(req, versions.PROJECT_CREATE, "Creating nodes as a project member")
        if values.get("owner") not in (None, project):
            raise errors.HTTPForbidden(f"A project-scoped caller can only create nodes owned by {project}.")
        values["owner"] = project
    values["uuid"] = values.get("uuid") or uuidutils.generate_uuid()  # null: generated, as Ironic does
    if not req.at_least(versions.ENROLL_DEFAULT):
        values["provision_state"] = "available"
    _check_driver(values["driver"], values.get("conductor_group") or "")
    node = req.rpcapi.create_node(req.context, values)
    headers = {"Location": base.links(req, "nodes", node["uuid"])[0]["href"]}
    return base.json_response(render(req, node), status=201, headers=headers)


def _check_driver(driver: str, group: str) -> None:
    conductors = db_api.get_online_conductors(base.CONF.conductor.heartbeat_timeout)
    in_group = [c for c in conductors if (c.conductor_group or "").lower() == group]
    if not any(driver in (c.drivers or []) for c in in_group):
        raise errors.HTTPBadRequest(
            f"No valid host was found. Reason: No conductor service registered which supports driver "
            f'{driver} for conductor group "{group}".'
        )


def patch_node(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """PATCH /v1/nodes/{node_ident}: JSON Patch of the writable fields."""
    node = dbread.get_node(req, node_ident)
    patch = base.json_body(req)
    doc = render(req, node)
    patched = validation.apply_patch(req, "node", doc, patch, READONLY, MANDATORY, _PATCH_MESSAGES)
    unknown = sorted(set(patched) - set(doc))
    if unknown:
        raise errors.HTTPBadRequest(f"Unknown node field(s) in the patch: {', '.join(unknown)}.")
    changed = validation.patched_fields(req, "Node", doc, patched, WRITABLE, fixed=("driver",))
    if "uuid" in patched and patched["uuid"] != doc["uuid"]:
        raise errors.HTTPBadRequest("'/uuid' is an internal attribute and can not be updated")
    if "driver_info" in changed:
        # The client was shown masked secrets; those it sent back unchanged keep their values.
        changed["driver_info"] = secrets.unmask_driver_info(changed["driver_info"], node.driver_info)
        if changed["driver_info"] == (node.driver_info or {}):
            del changed["driver_info"]
    if "instance_info" in changed:  # the same for instance_info (e.g. the rescue password's hash)
        changed["instance_info"] = secrets.unmask_driver_info(changed["instance_info"], node.instance_info)
        if changed["instance_info"] == (node.instance_info or {}):
            del changed["instance_info"]
    policy.authorize_node_patch(req, node, changed)
    changed = _check_node_values(changed, "node")
    if not changed:
        return base.json_response(render(req, node))
    updated = req.rpcapi.update_node(req.context, node, changed)
    return base.json_response(render(req, updated))


def delete_node(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """DELETE /v1/nodes/{node_ident}: 204."""
    node = dbread.get_node(req, node_ident)
    policy.authorize_any(req, ("baremetal:node:delete", "baremetal:node:delete:self_owned_node"), node)
    req.rpcapi.destroy_node(req.context, node)
    return base.no_content()


def register(router: Router) -> None:
    """Add the node routes (and the per-node actions)."""
    from agent.api.controllers import node_actions

    router.add("GET", "/v1/nodes", list_nodes)
    router.add("POST", "/v1/nodes", create_node)
    router.add("GET", "/v1/nodes/detail", list_nodes_detail)
    router.add("GET", "/v1/nodes/{node_ident}", get_node)
    router.add("PATCH", "/v1/nodes/{node_ident}", patch_node)
    router.add("DELETE", "/v1/nodes/{node_ident}", delete_node)
    node_actions.register(router)
