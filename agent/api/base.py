"""Request helpers shared by the controllers: JSON bodies, query parameters, links, collections."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import webob
from oslo_config import cfg
from oslo_utils import strutils

from agent.api import errors, versions

CONF = cfg.CONF


class ApiRequest(webob.Request):
    """A request with the negotiated ``version`` (tuple), the caller's ``context`` and ``rpcapi``."""

    version: tuple[int, int] = versions.MIN_VERSION
    context: dict
    rpcapi: Any

    def at_least(self, minor: int) -> bool:
        """Whether the negotiated microversion is 1.``minor`` or newer."""
        return self.version >= (versions.BASE_VERSION, minor)


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> webob.Response:
    """Return a JSON response (no body for 204)."""
    resp = webob.Response(status=status, headers=headers or {})
    if status == 204:
        resp.content_type = None
        return resp
    resp.content_type = "application/json"
    resp.charset = None
    resp.body = json.dumps(body).encode()
    return resp


def no_content() -> webob.Response:
    """Return 204 No Content."""
    return json_response(None, status=204)


def json_body(req: ApiRequest) -> Any:
    """Return the parsed JSON body; 400 naming the problem when it is empty or not JSON."""
    raw = req.body
    if not raw or not raw.strip():
        raise errors.HTTPBadRequest("The request body is empty; expected a JSON document.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.HTTPBadRequest(f"The request body is not valid JSON: {exc}.") from None


def json_object(req: ApiRequest, what: str) -> dict:
    """Return the JSON body, which must be an object describing ``what``."""
    body = json_body(req)
    if not isinstance(body, dict):
        raise errors.HTTPBadRequest(
            f"The request body must be a JSON object describing {what}, not {body!r}."
        )
    return body


def require_version(req: ApiRequest, minor: int) -> None:
    """404 when the endpoint did not exist at the negotiated version (as Ironic answers)."""
    if not req.at_least(minor):
        raise errors.HTTPNotFound(
            f"The resource could not be found: it needs API version 1.{minor} or newer, "
            f"the request used {versions.to_string(req.version)}."
        )


def feature_version(req: ApiRequest, minor: int, feature: str) -> None:
    """406 when ``feature`` is newer than the negotiated version (as Ironic answers)."""
    if not req.at_least(minor):
        raise errors.HTTPNotAcceptable(
            f"{feature} needs API version 1.{minor} or newer; the request used "
            f"{versions.to_string(req.version)}. Send {versions.VERSION_HEADER}: 1.{minor} or later."
        )


def detail_query(req: ApiRequest) -> bool:
    """A list request's ?detail= (1.43+): its boolean, False when absent."""
    if "detail" not in req.GET:
        return False
    feature_version(req, versions.DETAIL_QUERY, "The detail query parameter")
    return bool(parse_bool(req.GET["detail"], "detail"))


def parse_bool(value: str | None, name: str) -> bool | None:
    """Parse a boolean query parameter; 400 when it is not one."""
    if value is None:
        return None
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError:
        raise errors.HTTPBadRequest(f"Query parameter {name} must be a boolean, not {value!r}.") from None


def base_url(req: ApiRequest) -> str:
    """Return the public base URL (no trailing slash), computed once per request."""
    url = req.environ.get("kiln.base_url")
    if url is None:
        url = req.environ["kiln.base_url"] = (CONF.api.public_endpoint or req.host_url).rstrip("/")
    return url


def links(req: ApiRequest, resource: str, ident: str, suffix: str = "") -> list[dict[str, str]]:
    """Return Ironic's self and bookmark links of a resource."""
    base = base_url(req)
    tail = f"{resource}/{ident}{suffix}"
    return [{"href": f"{base}/v1/{tail}", "rel": "self"}, {"href": f"{base}/{tail}", "rel": "bookmark"}]


def parse_limit(req: ApiRequest) -> int:
    """Return the page size: limit= cut to [api]max_limit; 400 when it is not a positive integer."""
    raw = req.GET.get("limit")
    if raw is None or raw == "":
        return CONF.api.max_limit
    try:
        limit = int(raw)
    except ValueError:
        raise errors.HTTPBadRequest(f"Query parameter limit must be an integer, not {raw!r}.") from None
    if limit < 0:
        raise errors.HTTPBadRequest(f"Limit must be positive: got {limit}.")
    if limit == 0:
        return CONF.api.max_limit
    return min(limit, CONF.api.max_limit)


def parse_sort(req: ApiRequest, allowed: list[str], default: str = "id") -> tuple[str, str]:
    """Return (sort_key, sort_dir); 400 when either is not accepted."""
    key = req.GET.get("sort_key", default)
    direction = req.GET.get("sort_dir", "asc").lower()
    if direction not in ("asc", "desc"):
        raise errors.HTTPBadRequest(
            f"Invalid sort direction: {direction}. Acceptable values are 'asc' or 'desc'."
        )
    if key not in allowed:
        raise errors.HTTPBadRequest(
            f'The sort_key value "{key}" is an invalid field for sorting; use one of: {", ".join(allowed)}.'
        )
    return key, direction


def parse_fields(req: ApiRequest, valid: set[str]) -> list[str] | None:
    """Return the fields= selection (1.8+), or None; 400 naming fields that are not valid."""
    raw = req.GET.get("fields")
    if raw is None:
        return None
    feature_version(req, versions.FIELDS_SELECTOR, "The fields query parameter")
    fields = [f.strip() for f in raw.split(",") if f.strip()]
    bad = [f for f in fields if f not in valid]
    if bad:
        raise errors.HTTPBadRequest(
            f'Field(s) "{", ".join(bad)}" are not valid; valid fields: {", ".join(sorted(valid))}.'
        )
    return fields


def collection(
    req: ApiRequest, key: str, items: list[dict], last_marker: str | None, limit: int, path: str
) -> dict:
    """Return {key: items} plus "next" (the same query from after ``last_marker``) when the page is full."""
    body: dict[str, Any] = {key: items}
    if items and last_marker is not None and len(items) >= limit:
        params = [(k, v) for k, v in req.GET.items() if k not in ("marker", "limit")]
        params += [("limit", str(limit)), ("marker", last_marker)]
        body["next"] = f"{base_url(req)}/v1/{path}?{urlencode(params)}"
    return body
