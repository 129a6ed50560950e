"""The REST shape every simple resource shares (chassis, volume connectors and targets, deploy
templates): list (/detail, fields=, paging, sorting), show, create, JSON Patch and delete, with
Ironic's microversion gating and error bodies. Each resource's controller describes itself in a Spec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import webob

from agent.api import base, dbread, errors, policy, validation, views
from agent.common import exception, row_dicts
from agent.db.query import sortable_columns
from agent.db.records import Store

_LISTS = ("steps", "traits", "conditions", "actions")


@dataclass(frozen=True)
class Spec:
    """What one resource is: its URL, collection key, fields per version and database store."""

    path: str  # under /v1, e.g. "volume/connectors"
    key: str  # the collection's key in list bodies, e.g. "connectors"
    what: str  # its name in messages, e.g. "volume connector"
    minor: int  # the microversion that introduced it
    store: Store
    fields: dict[str, int]  # every field shown -> the microversion it appeared in
    list_fields: tuple[str, ...]
    writable: dict[str, tuple[int, str]]
    required: tuple[str, ...] = ()
    mandatory: frozenset[str] = frozenset()
    has_node: bool = False
    admin_only: bool = False
    # check(req, values, row or None) -> values: the resource's own validation of new values.
    check: Callable[[base.ApiRequest, dict, Any], dict] | None = None
    # extra(req, data) -> the resource's own computed fields (sub-resource links, ...).
    extra: Callable[[base.ApiRequest, dict], dict] | None = None
    # filters(req) -> {db filter: value}, and the db handlers those filters use.
    filters: Callable[[base.ApiRequest], dict] | None = None
    handlers: dict[str, Callable] = field(default_factory=dict)
    json_fields: tuple[str, ...] = ("extra",)

    def sort_keys(self) -> list[str]:
        """The columns a list may be sorted by (Ironic refuses its JSON columns)."""
        return sorted(set(sortable_columns(self.store.model)) - {"node_id", *self.json_fields})


def render(req: base.ApiRequest, spec: Spec, row: Any, fields=None, node_uuid: str | None = None) -> dict:
    """The API view of one row at the request's version."""
    data = row if isinstance(row, dict) else row_dicts.row_to_dict(row)
    full = {k: data.get(k) for k in spec.fields if k in data}
    for key in spec.json_fields:
        if key in spec.fields:
            value = data.get(key)
            full[key] = value if value is not None else ([] if key in _LISTS else {})
    if spec.has_node:
        if node_uuid is None and data.get("node_id") is not None:
            node_uuid = dbread.node_uuids([data["node_id"]]).get(data["node_id"])
        full["node_uuid"] = node_uuid
    full["links"] = base.links(req, spec.path, data["uuid"])
    if spec.extra is not None:
        full.update(spec.extra(req, data))
    return views.select_fields(full, views.visible(spec.fields, req), fields)


def _visible_node(req: base.ApiRequest, node_id: int | None) -> Any:
    if node_id is None:
        return None
    from agent.db import api as db_api

    return db_api.get_node_by_id(node_id)


def get_row(req: base.ApiRequest, spec: Spec, ident: str) -> Any:
    """The row the caller may see; the resource's 404 otherwise."""
    base.require_version(req, spec.minor)
    row = spec.store.get(ident)
    if spec.has_node:
        project = dbread.scope(req)
        node = _visible_node(req, row.node_id)
        if project is not None and (node is None or not dbread.visible(node, project)):
            raise spec.store.not_found(ident)
    return row


def _may_write(req: base.ApiRequest, spec: Spec, node: Any) -> None:
    if spec.admin_only:
        policy.authorize(req, "kiln:system_record:write", what=f"change a {spec.what}")
    elif not spec.has_node:
        policy.authorize(req, "kiln:record:write", what=f"change a {spec.what}")
    if node is not None:
        dbread.node_for_owner_only(req, node, f"change its {spec.what}s")


def _node_of(req: base.ApiRequest, ident: str) -> Any:
    try:
        return dbread.get_node(req, ident)
    except exception.NodeNotFound as exc:
        raise errors.HTTPBadRequest(str(exc)) from None


def list_rows(req: base.ApiRequest, spec: Spec, detail: bool, path: str, node: Any = None) -> webob.Response:
    """GET the collection (of ``node`` when given)."""
    base.require_version(req, spec.minor)
    if "detail" in req.GET and not path.endswith("/detail"):
        # The record resources take ?detail= from their own first version on, not only from 1.43.
        detail = bool(base.parse_bool(req.GET["detail"], "detail"))
    fields = views.list_fields(req, detail, spec.fields, spec.list_fields)
    limit = base.parse_limit(req)
    sort_key, sort_dir = base.parse_sort(req, spec.sort_keys())
    if spec.has_node and node is None and req.GET.get("node"):
        node = dbread.get_node(req, req.GET["node"])
    filters = spec.filters(req) if spec.filters is not None else {}
    try:
        rows = spec.store.list(
            filters,
            spec.handlers,
            node_id=node.id if node is not None else None,
            limit=limit,
            marker=req.GET.get("marker"),
            sort_key=sort_key,
            sort_dir=sort_dir,
        )
    except exception.InvalidParameterValue as exc:
        raise errors.HTTPBadRequest(str(exc)) from None
    uuids: dict[int, str] = {}
    if spec.has_node:
        uuids = dbread.node_uuids(r.node_id for r in rows)
        rows = dbread.visible_rows(req, rows, node, uuids)
    items = [render(req, spec, r, fields, uuids.get(getattr(r, "node_id", None))) for r in rows]
    last = rows[-1].uuid if rows else None
    return base.json_response(base.collection(req, spec.key, items, last, limit, path))


def show(req: base.ApiRequest, spec: Spec, ident: str) -> webob.Response:
    """GET one."""
    fields = views.check_fields(req, spec.fields)
    return base.json_response(render(req, spec, get_row(req, spec, ident), fields))


def create(req: base.ApiRequest, spec: Spec) -> webob.Response:
    """POST: 201 with the new resource and its Location."""
    base.require_version(req, spec.minor)
    body = base.json_object(req, f"a {spec.what}")
    values = validation.check_fields(req, spec.what, body, spec.writable, required=spec.required)
    node = None
    if spec.has_node:
        node = _node_of(req, values.pop("node_uuid"))
        values["node_id"] = node.id
    _may_write(req, spec, node)
    if spec.check is not None:
        values = spec.check(req, values, None)
    row = spec.store.create(values)
    headers = {"Location": base.links(req, spec.path, row.uuid)[0]["href"]}
    return base.json_response(render(req, spec, row), status=201, headers=headers)


def patch(req: base.ApiRequest, spec: Spec, ident: str) -> webob.Response:
    """PATCH with Ironic's JSON Patch rules; answers the updated resource."""
    row = get_row(req, spec, ident)
    node = _visible_node(req, row.node_id) if spec.has_node else None
    _may_write(req, spec, node)
    doc = render(req, spec, row)
    readonly = {"/" + f for f in spec.fields if f not in spec.writable} | {"/id", "/uuid"}
    patched = validation.apply_patch(req, spec.what, doc, base.json_body(req), readonly, set(spec.mandatory))
    changed: dict[str, Any] = {}
    for name, (minor, kind) in spec.writable.items():
        if name == "uuid" or not req.at_least(minor):
            continue
        new = patched.get(name)
        if new != doc.get(name):
            if kind == validation.OBJECT and new is None:
                new = {}
            changed[name] = validation.check_value(spec.what.capitalize(), name, kind, new)
    if "node_uuid" in changed:
        node = _node_of(req, changed.pop("node_uuid"))
        _may_write(req, spec, node)
        changed["node_id"] = node.id
    if spec.check is not None:
        changed = spec.check(req, changed, row)
    if not changed:
        return base.json_response(doc)
    return base.json_response(render(req, spec, spec.store.update(row.uuid, changed)))


def delete(
    req: base.ApiRequest, spec: Spec, ident: str, destroy: Callable[[str], None] | None = None
) -> webob.Response:
    """DELETE: 204."""
    row = get_row(req, spec, ident)
    node = _visible_node(req, row.node_id) if spec.has_node else None
    _may_write(req, spec, node)
    if spec.check is not None:
        spec.check(req, {}, row)
    (destroy or spec.store.destroy)(row.uuid)
    return base.no_content()


def register(router: Any, spec: Spec, destroy: Callable[[str], None] | None = None) -> None:
    """Add the collection and item routes of ``spec``."""
    top = f"/v1/{spec.path}"
    router.add("GET", top, lambda req: list_rows(req, spec, False, spec.path))
    router.add("GET", f"{top}/detail", lambda req: list_rows(req, spec, True, f"{spec.path}/detail"))
    router.add("POST", top, lambda req: create(req, spec))
    router.add("GET", top + "/{ident}", lambda req, ident: show(req, spec, ident))
    router.add("PATCH", top + "/{ident}", lambda req, ident: patch(req, spec, ident))
    router.add("DELETE", top + "/{ident}", lambda req, ident: delete(req, spec, ident, destroy))
