"""Version discovery: GET / and GET /v1."""

from __future__ import annotations

import webob

from agent.api import base, versions
from agent.api.router import Router


def _version_doc(req: base.ApiRequest) -> dict:
    return {
        "id": "v1",
        "links": [{"href": f"{base.base_url(req)}/v1/", "rel": "self"}],
        "status": "CURRENT",
        "min_version": versions.min_string(),
        "version": versions.max_string(),
    }


def _links(req: base.ApiRequest, name: str) -> list[dict]:
    root = base.base_url(req)
    return [{"href": f"{root}/v1/{name}/", "rel": "self"}, {"href": f"{root}/{name}/", "rel": "bookmark"}]


def get_root(req: base.ApiRequest) -> webob.Response:
    """GET /: the API's versions."""
    doc = _version_doc(req)
    return base.json_response(
        {
            "name": "OpenStack Ironic API",
            "description": "Kiln: bare-metal provisioning for GPU fleets, speaking the Ironic API.",
            "default_version": doc,
            "versions": [doc],
        }
    )


def get_v1(req: base.ApiRequest) -> webob.Response:
    """GET /v1: the v1 document with links to its resources."""
    body = {
        "id": "v1",
        "links": [
            {"href": f"{base.base_url(req)}/v1/", "rel": "self"},
            {
                "href": "https://docs.openstack.org/ironic/latest/contributor/webapi.html",
                "rel": "describedby",
                "type": "text/html",
            },
        ],
        "media_types": [{"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}],
        "nodes": _links(req, "nodes"),
        "ports": _links(req, "ports"),
        "drivers": _links(req, "drivers"),
        "version": _version_doc(req),
    }
    if req.at_least(versions.CONDUCTORS):
        body["conductors"] = _links(req, "conductors")
    if req.at_least(versions.ALLOCATIONS):
        body["allocations"] = _links(req, "allocations")
    return base.json_response(body)


def register(router: Router) -> None:
    """Add the discovery routes."""
    router.add("GET", "/", get_root)
    router.add("GET", "/v1", get_v1)
