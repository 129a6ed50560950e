"""/v1/nodes/{node}/vifs (1.28+): attach, list and detach VIFs, as `baremetal node vif ...` sends them.

A VIF's id names a network Kiln knows (a ``[network:NAME]`` section of the conductor's config); the
conductor checks who may use it and records it on a free port or portgroup (its internal_info
``tenant_vif_port_id``), as Ironic does.
"""

from __future__ import annotations

import webob
from oslo_utils import uuidutils

from agent.api import base, dbread, errors, policy, validation, versions
from agent.api.router import Router
from agent.api.validation import NAME, UUID


def _check_vif_id(value) -> str:
    if not isinstance(value, str) or not value:
        raise errors.HTTPBadRequest(f"A VIF needs an id (a network's UUID or name), not {value!r}.")
    kind = UUID if uuidutils.is_uuid_like(value) else NAME
    return validation.check_value("VIF", "id", kind, value)


def list_vifs(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/vifs: {"vifs": [{"id": ...}]}."""
    base.require_version(req, versions.VIFS)
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:vif:list", node)
    vifs = req.rpcapi.vif_list(req.context, node)
    return base.json_response({"vifs": vifs})


def attach_vif(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """POST /v1/nodes/{node}/vifs {"id": VIF, optional port_uuid or portgroup_uuid (1.67+)}: 204."""
    base.require_version(req, versions.VIFS)
    body = base.json_object(req, "a VIF")
    if "id" not in body:
        raise errors.HTTPBadRequest("A VIF needs an id (a network's UUID or name): {'id': ...}.")
    info = dict(body)
    info["id"] = _check_vif_id(body["id"])
    for key in ("port_uuid", "portgroup_uuid"):
        if key in info:
            base.feature_version(req, versions.VIF_PORT_UUID, f"VIF field {key}")
            info[key] = validation.check_value("VIF", key, UUID, info[key], nullable=False)
    if "port_uuid" in info and "portgroup_uuid" in info:
        raise errors.HTTPBadRequest("A VIF may name port_uuid or portgroup_uuid, not both.")
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:vif:attach", node)
    req.rpcapi.vif_attach(req.context, node, info)
    return base.no_content()


def detach_vif(req: base.ApiRequest, node_ident: str, vif_id: str) -> webob.Response:
    """DELETE /v1/nodes/{node}/vifs/{vif}: 204."""
    base.require_version(req, versions.VIFS)
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:vif:detach", node)
    req.rpcapi.vif_detach(req.context, node, _check_vif_id(vif_id))
    return base.no_content()


def register(router: Router) -> None:
    """Add the VIF routes."""
    router.add("GET", "/v1/nodes/{node_ident}/vifs", list_vifs)
    router.add("POST", "/v1/nodes/{node_ident}/vifs", attach_vif)
    router.add("DELETE", "/v1/nodes/{node_ident}/vifs/{vif_id}", detach_vif)
