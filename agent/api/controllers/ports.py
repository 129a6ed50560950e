"""/v1/ports: create, list (/detail, by node or address), show, PATCH, delete."""

from __future__ import annotations

from typing import Any

import webob

from agent.api import base, dbread, errors, policy, validation, versions, views
from agent.api.router import Router
from agent.api.validation import BOOL, OBJECT, STRING, UUID
from agent.common import exception, row_dicts
from agent.db import api as db_api
from agent.db.models import Port
from agent.db.query import sortable_columns

WRITABLE: dict[str, tuple[int, str]] = {
    "uuid": (1, UUID),
    "address": (1, STRING),
    "node_uuid": (1, UUID),
    "extra": (1, OBJECT),
    "local_link_connection": (versions.PORT_ADVANCED_NET, OBJECT),
    "pxe_enabled": (versions.PORT_ADVANCED_NET, BOOL),
    "portgroup_uuid": (versions.PORTGROUP_SUBRESOURCES, STRING),  # a UUID or a name, as in Ironic
    "physical_network": (versions.PORT_PHYSNET, STRING),
    "is_smartnic": (versions.SMARTNIC, BOOL),
}
READONLY = {"/uuid", "/id", "/created_at", "/updated_at", "/links", "/internal_info"}
MANDATORY = {"/address", "/node_uuid"}
SORT_KEYS = sorted(set(sortable_columns(Port)) - {"node_id", "portgroup_id"})
_LLC_KEYS = {"switch_id", "port_id", "switch_info", "network_type"}


def _render(req: base.ApiRequest, port: Any, node_uuid: str | None, fields=None, pg_uuids=None) -> dict:
    data = port if isinstance(port, dict) else row_dicts.port_to_dict(port)
    pg_id = data.get("portgroup_id")
    if pg_uuids is None:
        pg_uuids = db_api.portgroup_uuids([pg_id])
    return views.port_view(req, data, node_uuid, fields, pg_uuids.get(pg_id))


def _visible_port(req: base.ApiRequest, ident: str) -> tuple[Any, Any]:
    """The port and its node, if the caller may see them; 404 otherwise."""
    try:
        port = db_api.get_port(ident)
    except exception.InvalidParameterValue:
        raise exception.PortNotFound(port=ident) from None
    node = db_api.get_node_by_id(port.node_id) if port.node_id is not None else None
    project = dbread.scope(req)
    if project is not None and (node is None or not dbread.visible(node, project)):
        raise exception.PortNotFound(port=ident)
    return port, node


def list_for(
    req: base.ApiRequest, node: Any | None, detail: bool, path: str, portgroup: Any | None = None
) -> webob.Response:
    """List ports (of ``node`` or ``portgroup`` when given) with fields=, paging, sorting and filters."""
    fields = views.list_fields(req, detail, views.PORT_FIELDS, views.PORT_LIST_FIELDS)
    limit = base.parse_limit(req)
    sort_key, sort_dir = base.parse_sort(req, SORT_KEYS)
    filters: dict[str, Any] = {}
    if "address" in req.GET:
        filters["address"] = req.GET["address"]
    if "pxe_enabled" in req.GET:
        filters["pxe_enabled"] = base.parse_bool(req.GET["pxe_enabled"], "pxe_enabled")
    if portgroup is None and req.GET.get("portgroup"):
        base.feature_version(req, versions.PORTGROUP_SUBRESOURCES, "The portgroup query parameter")
        portgroup = _portgroup_in_query(req, req.GET["portgroup"])
    if portgroup is not None:
        filters["portgroup_id"] = portgroup.id
    node_filter = req.GET.get("node") or req.GET.get("node_uuid")
    if node is None and node_filter:
        node = dbread.get_node(req, node_filter)
    dbread.scope(req)  # 403 before any read for a caller with neither a project nor the admin role
    rows = dbread.page(req, db_api.list_ports, node, filters, limit, (sort_key, sort_dir))
    uuids = dbread.node_uuids(p.node_id for p in rows)
    rows = dbread.visible_rows(req, rows, node, uuids)
    pg_uuids = db_api.portgroup_uuids([p.portgroup_id for p in rows])
    items = [_render(req, p, uuids.get(p.node_id), fields, pg_uuids) for p in rows]
    last = rows[-1].uuid if rows else None
    return base.json_response(base.collection(req, "ports", items, last, limit, path))


def _portgroup_in_query(req: base.ApiRequest, ident: str) -> Any:
    try:
        return db_api.get_portgroup(ident)
    except exception.InvalidParameterValue:
        raise exception.PortgroupNotFound(portgroup=ident) from None


def list_ports(req: base.ApiRequest) -> webob.Response:
    """GET /v1/ports (detail=True from 1.43)."""
    return list_for(req, None, base.detail_query(req), "ports")


def list_ports_detail(req: base.ApiRequest) -> webob.Response:
    """GET /v1/ports/detail."""
    return list_for(req, None, True, "ports/detail")


def get_port(req: base.ApiRequest, port_ident: str) -> webob.Response:
    """GET /v1/ports/{port}."""
    fields = views.check_fields(req, views.PORT_FIELDS)
    port, node = _visible_port(req, port_ident)
    return base.json_response(_render(req, port, node.uuid if node else None, fields))


def _check_port_values(values: dict) -> dict:
    if "address" in values:
        try:
            values["address"] = db_api.normalize_mac(values["address"])
        except exception.InvalidParameterValue:
            raise errors.HTTPBadRequest(f"Expected a MAC address but received {values['address']}.") from None
    llc = values.get("local_link_connection")
    if llc:
        unknown = sorted(set(llc) - _LLC_KEYS)
        if unknown:
            raise errors.HTTPBadRequest(
                f"local_link_connection has unknown key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(_LLC_KEYS))}."
            )
    return values


def _set_portgroup(values: dict, node_id: int, port_ident: str = "new port") -> None:
    """Turn ``portgroup_uuid`` into ``portgroup_id``: 400 when unknown or on another node."""
    if "portgroup_uuid" not in values:
        return
    ident = values.pop("portgroup_uuid")
    if ident is None:
        values["portgroup_id"] = None
        return
    try:
        portgroup = db_api.get_portgroup(ident)
    except (exception.PortgroupNotFound, exception.InvalidParameterValue) as exc:
        raise errors.HTTPBadRequest(str(exc)) from None
    if portgroup.node_id != node_id:
        raise errors.HTTPBadRequest(
            f"Port group {portgroup.uuid} and port {port_ident} are not associated with the same node; "
            "a port can only join a portgroup of its own node."
        )
    values["portgroup_id"] = portgroup.id


def _check_standalone(values: dict, pg_id: int | None, pxe: bool, port_ident: str = "new port") -> None:
    """409 when a PXE-enabled port is in a portgroup that supports no standalone ports (Ironic's rule)."""
    pg_id = values.get("portgroup_id", pg_id)
    if pg_id is None or not values.get("pxe_enabled", pxe):
        return
    portgroup = db_api.get_portgroup_by_id(pg_id)
    if not portgroup.standalone_ports_supported:
        raise errors.HTTPConflict(
            f"Port group {portgroup.uuid} doesn't support standalone ports. This port {port_ident} "
            "cannot be a member of that port group because pxe_enabled was set to True."
        )


def _node_for_write(req: base.ApiRequest, ident: str) -> Any:
    """The node a port is attached to; 400 (not 404) when it does not exist, as Ironic answers."""
    try:
        node = dbread.get_node(req, ident)
    except exception.NodeNotFound as exc:
        raise errors.HTTPBadRequest(str(exc)) from None
    policy.authorize(req, "baremetal:port:create", node)
    return node


def create_port(req: base.ApiRequest) -> webob.Response:
    """POST /v1/ports: 201."""
    body = base.json_object(req, "a port")
    values = validation.check_fields(req, "port", body, WRITABLE, required=("address", "node_uuid"))
    values = _check_port_values(values)
    node = _node_for_write(req, values.pop("node_uuid"))
    values["node_id"] = node.id
    _set_portgroup(values, node.id)
    _check_standalone(values, None, True)
    port = req.rpcapi.create_port(req.context, node, values)
    headers = {"Location": base.links(req, "ports", port["uuid"])[0]["href"]}
    return base.json_response(_render(req, port, node.uuid), status=201, headers=headers)


def patch_port(req: base.ApiRequest, port_ident: str) -> webob.Response:
    """PATCH /v1/ports/{port}."""
    port, node = _visible_port(req, port_ident)
    policy.authorize(req, "baremetal:port:update", node)
    patch = base.json_body(req)
    doc = _render(req, port, node.uuid if node else None)
    patched = validation.apply_patch(req, "port", doc, patch, READONLY, MANDATORY)
    changed = validation.patched_fields(req, "Port", doc, patched, WRITABLE)
    changed = _check_port_values(changed)
    if "node_uuid" in changed:
        new_node = _node_for_write(req, changed.pop("node_uuid"))
        changed["node_id"] = new_node.id
    if "node_id" in changed and "portgroup_uuid" not in changed and port.portgroup_id is not None:
        changed["portgroup_uuid"] = doc.get("portgroup_uuid")
    _set_portgroup(changed, changed.get("node_id", port.node_id), port.uuid)
    _check_standalone(changed, port.portgroup_id, port.pxe_enabled, port.uuid)
    if not changed:
        return base.json_response(doc)
    target = node or db_api.get_node_by_id(changed["node_id"])
    updated = req.rpcapi.update_port(req.context, target, port.uuid, changed)
    node_uuid = dbread.node_uuids([updated["node_id"]]).get(updated["node_id"])
    return base.json_response(_render(req, updated, node_uuid))


def delete_port(req: base.ApiRequest, port_ident: str) -> webob.Response:
    """DELETE /v1/ports/{port}: 204."""
    port, node = _visible_port(req, port_ident)
    policy.authorize(req, "baremetal:port:delete", node)
    if node is not None:
        req.rpcapi.destroy_port(req.context, node, port.uuid)
    else:
        db_api.destroy_port(port.uuid)
    return base.no_content()


def register(router: Router) -> None:
    """Add the port routes."""
    router.add("GET", "/v1/ports", list_ports)
    router.add("POST", "/v1/ports", create_port)
    router.add("GET", "/v1/ports/detail", list_ports_detail)
    router.add("GET", "/v1/ports/{port_ident}", get_port)
    router.add("PATCH", "/v1/ports/{port_ident}", patch_port)
    router.add("DELETE", "/v1/ports/{port_ident}", delete_port)
