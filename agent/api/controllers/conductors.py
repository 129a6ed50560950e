"""/v1/conductors (1.49): registered conductors, whether they are alive, their drivers and group."""

from __future__ import annotations

import datetime
from typing import Any

import webob

from agent.api import base, errors, versions
from agent.api.router import Router
from agent.common import row_dicts
from agent.common.utils import utcnow
from agent.db import api as db_api
from agent.db import exceptions as db_exc

LIST_FIELDS = ("hostname", "conductor_group", "alive")
ALL_FIELDS = {"hostname", "conductor_group", "alive", "drivers", "created_at", "updated_at", "links"}


def _alive(conductor: Any) -> bool:
    if not conductor.online or conductor.updated_at is None and conductor.created_at is None:
        return False
    seen = conductor.updated_at or conductor.created_at
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=datetime.UTC)
    limit = datetime.timedelta(seconds=base.CONF.conductor.heartbeat_timeout)
    return utcnow() - seen <= limit


def _render(req: base.ApiRequest, conductor: Any, fields: list[str] | tuple[str, ...] | None) -> dict:
    data = row_dicts.conductor_to_dict(conductor)
    root = base.base_url(req)
    body = {
        "hostname": conductor.hostname,
        "conductor_group": conductor.conductor_group or "",
        "alive": _alive(conductor),
        "drivers": sorted(conductor.drivers or []),
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
        "links": [
            {"href": f"{root}/v1/conductors/{conductor.hostname}", "rel": "self"},
            {"href": f"{root}/conductors/{conductor.hostname}", "rel": "bookmark"},
        ],
    }
    if fields is None:
        return body
    return {k: v for k, v in body.items() if k in fields or k == "links"}


def list_conductors(req: base.ApiRequest) -> webob.Response:
    """GET /v1/conductors (detail=True for drivers and timestamps)."""
    base.require_version(req, versions.CONDUCTORS)
    detail = bool(base.parse_bool(req.GET.get("detail"), "detail"))
    if detail and "fields" in req.GET:
        raise errors.HTTPBadRequest("Can not specify ?detail=True and fields in the same request.")
    fields = base.parse_fields(req, ALL_FIELDS)
    if fields is None and not detail:
        fields = list(LIST_FIELDS)
    limit = base.parse_limit(req)
    rows = sorted(db_api.list_conductors(), key=lambda c: c.hostname)
    marker = req.GET.get("marker")
    if marker:
        rows = [c for c in rows if c.hostname > marker]
    rows = rows[:limit]
    items = [_render(req, c, fields) for c in rows]
    last = rows[-1].hostname if rows else None
    return base.json_response(base.collection(req, "conductors", items, last, limit, "conductors"))


def get_conductor(req: base.ApiRequest, hostname: str) -> webob.Response:
    """GET /v1/conductors/{hostname}."""
    base.require_version(req, versions.CONDUCTORS)
    fields = base.parse_fields(req, ALL_FIELDS)
    try:
        conductor = db_api.get_conductor(hostname)
    except db_exc.ConductorNotRegistered:
        raise errors.HTTPNotFound(f"Conductor {hostname} could not be found.") from None
    return base.json_response(_render(req, conductor, fields))


def register(router: Router) -> None:
    """Add the conductor routes."""
    router.add("GET", "/v1/conductors", list_conductors)
    router.add("GET", "/v1/conductors/{hostname}", get_conductor)
