"""A node's virtual media (1.89: POST and DELETE /v1/nodes/{node}/vmedia, through the conductor and
the node's management interface); the firmware components are in agent.api.controllers.bmc."""

from __future__ import annotations

import json

import webob

from agent.api import base, dbread, errors, policy, versions
from agent.api.router import Router

DEVICE_TYPES = ("cdrom", "dvd", "floppy", "usb")
DOWNLOAD_SOURCES = ("local", "http", "swift")


def _device_type(value: object) -> str:
    if value not in DEVICE_TYPES:
        raise errors.HTTPBadRequest(
            f"Virtual media device_type {value!r} is not one of {', '.join(DEVICE_TYPES)}."
        )
    return str(value)


def attach_vmedia(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """POST /v1/nodes/{node}/vmedia: insert an image; 204."""
    base.require_version(req, versions.VMEDIA)
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:vmedia:attach", node)
    body = base.json_object(req, "a virtual media attachment")
    unknown = sorted(set(body) - {"device_type", "image_url", "image_download_source"})
    if unknown:
        raise errors.HTTPBadRequest(
            f"Unknown field(s) in the virtual media attachment: {', '.join(unknown)}."
        )
    device_type = _device_type(body.get("device_type"))
    url = body.get("image_url")
    if not isinstance(url, str) or not url:
        raise errors.HTTPBadRequest("Virtual media image_url is required (the URL the BMC downloads).")
    source = body.get("image_download_source", "local")
    if source not in DOWNLOAD_SOURCES:
        raise errors.HTTPBadRequest(
            f"Virtual media image_download_source {source!r} is not one of {', '.join(DOWNLOAD_SOURCES)}."
        )
    req.rpcapi.attach_virtual_media(req.context, node, device_type, url, source)
    return base.no_content()


def detach_vmedia(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """DELETE /v1/nodes/{node}/vmedia (device_types in the body or query: some, else all); 204."""
    base.require_version(req, versions.VMEDIA)
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:vmedia:detach", node)
    raw = req.GET.get("device_types")
    if raw is None and req.body and req.body.strip():
        try:
            raw = (json.loads(req.body) or {}).get("device_types")
        except (ValueError, AttributeError):
            raise errors.HTTPBadRequest(
                'The body must be {"device_types": "cdrom,floppy"} or empty.'
            ) from None
    types = None
    if raw:
        items = raw if isinstance(raw, list) else str(raw).split(",")
        types = [_device_type(t.strip()) for t in items if t.strip()]
    req.rpcapi.detach_virtual_media(req.context, node, types)
    return base.no_content()


def register(router: Router) -> None:
    """Add the virtual media routes."""
    router.add("POST", "/v1/nodes/{node_ident}/vmedia", attach_vmedia)
    router.add("DELETE", "/v1/nodes/{node_ident}/vmedia", detach_vmedia)
