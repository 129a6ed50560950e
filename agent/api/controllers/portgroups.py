"""/v1/portgroups (1.23+): create, list (/detail, by node or address), show, PATCH, delete;
a node's portgroups and a portgroup's ports (1.24+); mode and properties (1.26+)."""

from __future__ import annotations

from typing import Any

import webob

from agent.api import base, dbread, errors, policy, validation, versions, views
from agent.api.controllers import ports
from agent.api.router import Router
from agent.api.validation import BOOL, NAME, OBJECT, STRING, UUID
from agent.common import exception, network_data, row_dicts
from agent.db import api as db_api
from agent.db.models import Portgroup
from agent.db.query import sortable_columns

WRITABLE: dict[str, tuple[int, str]] = {
    "uuid": (versions.PORTGROUPS, UUID),
    "address": (versions.PORTGROUPS, STRING),
    "name": (versions.PORTGROUPS, NAME),
    "node_uuid": (versions.PORTGROUPS, UUID),
    "standalone_ports_supported": (versions.PORTGROUPS, BOOL),
    "extra": (versions.PORTGROUPS, OBJECT),
    "mode": (versions.PORTGROUP_MODE_PROPERTIES, STRING),
    "properties": (versions.PORTGROUP_MODE_PROPERTIES, OBJECT),
}
READONLY = {"/uuid", "/id", "/created_at", "/updated_at", "/links", "/ports", "/internal_info"}
MANDATORY = {"/node_uuid", "/mode"}
# Ironic refuses sorting by its JSON columns.
SORT_KEYS = sorted(set(sortable_columns(Portgroup)) - {"node_id", "extra", "internal_info", "properties"})


def _render(req: base.ApiRequest, pg: Any, node_uuid: str | None, fields=None) -> dict:
    data = pg if isinstance(pg, dict) else row_dicts.portgroup_to_dict(pg)
    return views.portgroup_view(req, data, node_uuid, fields)


def visible_portgroup(req: base.ApiRequest, ident: str) -> tuple[Any, Any]:
    """The portgroup and its node, if the caller may see them; 404 otherwise."""
    try:
        pg = db_api.get_portgroup(ident)
    except exception.InvalidParameterValue:
        raise exception.PortgroupNotFound(portgroup=ident) from None
    node = db_api.get_node_by_id(pg.node_id) if pg.node_id is not None else None
    project = dbread.scope(req)
    if project is not None and (node is None or not dbread.visible(node, project)):
        raise exception.PortgroupNotFound(portgroup=ident)
    return pg, node


def list_for(req: base.ApiRequest, node: Any | None, detail: bool, path: str) -> webob.Response:
    """List portgroups (of ``node`` when given) with fields=, paging, sorting and the address filter."""
    base.require_version(req, versions.PORTGROUPS)
    fields = views.list_fields(req, detail, views.PORTGROUP_FIELDS, views.PORTGROUP_LIST_FIELDS)
    limit = base.parse_limit(req)
    sort_key, sort_dir = base.parse_sort(req, SORT_KEYS)
    node_filter = req.GET.get("node")
    if node is None and node_filter:
        node = dbread.get_node(req, node_filter)
    filters: dict[str, Any] = {}
    if req.GET.get("address"):
        if node is not None:
            raise errors.HTTPBadRequest("Filtering by node and address simultaneously is not supported.")
        filters["address"] = req.GET["address"]
    rows = dbread.page(req, db_api.list_portgroups, node, filters, limit, (sort_key, sort_dir))
    uuids = dbread.node_uuids(p.node_id for p in rows)
    rows = dbread.visible_rows(req, rows, node, uuids)
    items = [_render(req, p, uuids.get(p.node_id), fields) for p in rows]
    last = rows[-1].uuid if rows else None
    return base.json_response(base.collection(req, "portgroups", items, last, limit, path))


def list_portgroups(req: base.ApiRequest) -> webob.Response:
    """GET /v1/portgroups."""
    return list_for(req, None, base.detail_query(req), "portgroups")


def list_portgroups_detail(req: base.ApiRequest) -> webob.Response:
    """GET /v1/portgroups/detail."""
    return list_for(req, None, True, "portgroups/detail")


def get_portgroup(req: base.ApiRequest, portgroup_ident: str) -> webob.Response:
    """GET /v1/portgroups/{portgroup}."""
    base.require_version(req, versions.PORTGROUPS)
    fields = views.check_fields(req, views.PORTGROUP_FIELDS)
    pg, node = visible_portgroup(req, portgroup_ident)
    return base.json_response(_render(req, pg, node.uuid if node else None, fields))


_MODES = (*network_data.BOND_MODES, *(str(i) for i in range(7)))


def _check_values(values: dict) -> dict:
    if values.get("mode") is not None and values["mode"] not in _MODES:
        raise errors.HTTPBadRequest(
            f"Portgroup mode {values['mode']!r} is not a Linux bonding mode; use one of "
            f"{', '.join(network_data.BOND_MODES)} (or their numbers 0-6)."
        )
    if values.get("address") is not None:
        try:
            values["address"] = db_api.normalize_mac(values["address"])
        except exception.InvalidParameterValue:
            raise errors.HTTPBadRequest(f"Expected a MAC address but received {values['address']}.") from None
    return values


def _node_for_write(req: base.ApiRequest, ident: str) -> Any:
    try:
        node = dbread.get_node(req, ident)
    except exception.NodeNotFound as exc:
        raise errors.HTTPBadRequest(str(exc)) from None
    policy.authorize(req, "baremetal:portgroup:create", node)
    return node


def create_portgroup(req: base.ApiRequest) -> webob.Response:
    """POST /v1/portgroups: 201."""
    base.require_version(req, versions.PORTGROUPS)
    body = base.json_object(req, "a portgroup")
    values = validation.check_fields(req, "portgroup", body, WRITABLE, required=("node_uuid",))
    values = _check_values(values)
    node = _node_for_write(req, values.pop("node_uuid"))
    values["node_id"] = node.id
    pg = req.rpcapi.create_portgroup(req.context, node, values)
    headers = {"Location": base.links(req, "portgroups", pg["uuid"])[0]["href"]}
    return base.json_response(_render(req, pg, node.uuid), status=201, headers=headers)


def patch_portgroup(req: base.ApiRequest, portgroup_ident: str) -> webob.Response:
    """PATCH /v1/portgroups/{portgroup}."""
    base.require_version(req, versions.PORTGROUPS)
    pg, node = visible_portgroup(req, portgroup_ident)
    policy.authorize(req, "baremetal:portgroup:update", node)
    patch = base.json_body(req)
    doc = _render(req, pg, node.uuid)
    patched = validation.apply_patch(req, "portgroup", doc, patch, READONLY, MANDATORY)
    changed = validation.patched_fields(req, "Portgroup", doc, patched, WRITABLE)
    changed = _check_values(changed)
    if "node_uuid" in changed:
        changed["node_id"] = _node_for_write(req, changed.pop("node_uuid")).id
    if not changed:
        return base.json_response(doc)
    updated = req.rpcapi.update_portgroup(req.context, node, pg.uuid, changed)
    node_uuid = dbread.node_uuids([updated["node_id"]]).get(updated["node_id"])
    return base.json_response(_render(req, updated, node_uuid))


def delete_portgroup(req: base.ApiRequest, portgroup_ident: str) -> webob.Response:
    """DELETE /v1/portgroups/{portgroup}: 204; 400 while ports are still in it."""
    base.require_version(req, versions.PORTGROUPS)
    pg, node = visible_portgroup(req, portgroup_ident)
    policy.authorize(req, "baremetal:portgroup:delete", node)
    req.rpcapi.destroy_portgroup(req.context, node, pg.uuid)
    return base.no_content()


def list_portgroup_ports(req: base.ApiRequest, portgroup_ident: str, detail: bool = False) -> webob.Response:
    """GET /v1/portgroups/{portgroup}/ports (1.24+)."""
    base.require_version(req, versions.PORTGROUP_SUBRESOURCES)
    pg, node = visible_portgroup(req, portgroup_ident)
    suffix = "/detail" if detail else ""
    return ports.list_for(req, None, detail, f"portgroups/{pg.uuid}/ports{suffix}", portgroup=pg)


def list_node_portgroups(req: base.ApiRequest, node_ident: str, detail: bool = False) -> webob.Response:
    """GET /v1/nodes/{node}/portgroups (1.24+)."""
    base.require_version(req, versions.PORTGROUP_SUBRESOURCES)
    node = dbread.get_node(req, node_ident)
    suffix = "/detail" if detail else ""
    return list_for(req, node, detail, f"nodes/{node.uuid}/portgroups{suffix}")


def register(router: Router) -> None:
    """Add the portgroup routes."""
    router.add("GET", "/v1/portgroups", list_portgroups)
    router.add("POST", "/v1/portgroups", create_portgroup)
    router.add("GET", "/v1/portgroups/detail", list_portgroups_detail)
    router.add("GET", "/v1/portgroups/{portgroup_ident}", get_portgroup)
    router.add("PATCH", "/v1/portgroups/{portgroup_ident}", patch_portgroup)
    router.add("DELETE", "/v1/portgroups/{portgroup_ident}", delete_portgroup)
    router.add("GET", "/v1/portgroups/{portgroup_ident}/ports", list_portgroup_ports)
    router.add(
        "GET",
        "/v1/portgroups/{portgroup_ident}/ports/detail",
        lambda req, portgroup_ident: list_portgroup_ports(req, portgroup_ident, True),
    )
    router.add("GET", "/v1/nodes/{node_ident}/portgroups", list_node_portgroups)
    router.add(
        "GET",
        "/v1/nodes/{node_ident}/portgroups/detail",
        lambda req, node_ident: list_node_portgroups(req, node_ident, True),
    )
