"""/v1/chassis: groups of nodes (description, extra); a chassis's nodes at /v1/chassis/{chassis}/nodes."""

from __future__ import annotations

import webob

from agent.api import base, records
from agent.api.router import Router
from agent.api.validation import OBJECT, STRING, UUID
from agent.db import chassis as db_chassis

FIELDS = {"uuid": 1, "description": 1, "extra": 1, "created_at": 1, "updated_at": 1, "links": 1, "nodes": 1}
WRITABLE = {"uuid": (1, UUID), "description": (1, STRING), "extra": (1, OBJECT)}


def _check(req: base.ApiRequest, values: dict, row) -> dict:
    description = values.get("description")
    if description is not None and len(description) > 255:
        raise records.errors.HTTPBadRequest(
            f"Chassis description is {len(description)} characters long; at most 255 are allowed."
        )
    return values


def _links(req: base.ApiRequest, data: dict) -> dict:
    return {"nodes": base.links(req, "chassis", data["uuid"], "/nodes")}


SPEC = records.Spec(
    path="chassis",
    key="chassis",
    what="chassis",
    minor=1,
    store=db_chassis.STORE,
    fields=FIELDS,
    list_fields=("uuid", "description"),
    writable=WRITABLE,
    admin_only=True,
    check=_check,
    extra=_links,
)


def list_chassis_nodes(req: base.ApiRequest, ident: str, detail: bool = False) -> webob.Response:
    """GET /v1/chassis/{chassis}/nodes: the nodes of one chassis."""
    from agent.api.controllers import nodes

    row = records.get_row(req, SPEC, ident)
    suffix = "/detail" if detail else ""
    return nodes.list_filtered(req, detail, f"chassis/{row.uuid}/nodes{suffix}", {"chassis_id": row.id})


def register(router: Router) -> None:
    """Add the chassis routes."""
    router.add("GET", "/v1/chassis/{ident}/nodes", list_chassis_nodes)
    router.add(
        "GET", "/v1/chassis/{ident}/nodes/detail", lambda req, ident: list_chassis_nodes(req, ident, True)
    )
    records.register(router, SPEC, db_chassis.destroy_chassis)
