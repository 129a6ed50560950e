"""/v1/volume (1.32+): volume connectors and targets, and a node's at /v1/nodes/{node}/volume.
Stored and validated; a connector or target may only change while its node is powered off (Ironic)."""

from __future__ import annotations

from typing import Any

import webob

from agent.api import base, dbread, errors, records, versions
from agent.api.router import Router
from agent.api.validation import INT, OBJECT, STRING, UUID
from agent.common import states
from agent.db import api as db_api
from agent.db import volume_connectors as db_connectors
from agent.db import volume_targets as db_targets

CONNECTOR_TYPES = ("iqn", "ip", "mac", "wwnn", "wwpn", "port", "portgroup")
_COMMON = {"uuid": 32, "node_uuid": 32, "extra": 32, "created_at": 32, "updated_at": 32, "links": 32}


def _powered_off(req: base.ApiRequest, what: str, values: dict, row: Any) -> None:
    node_id = values.get("node_id", getattr(row, "node_id", None))
    for nid in {node_id, getattr(row, "node_id", None)} - {None}:
        node = db_api.get_node_by_id(nid)
        if node.power_state != states.POWER_OFF:
            raise errors.HTTPBadRequest(
                f'The requested action "{what} change" can not be performed on node "{node.uuid}" '
                f'while it is in power state "{node.power_state}"; power the node off first.'
            )


def _check_connector(req: base.ApiRequest, values: dict, row: Any) -> dict:
    kind = values.get("type")
    if kind is not None and kind not in CONNECTOR_TYPES:
        raise errors.HTTPBadRequest(
            f"Volume connector type {kind!r} is not valid; use one of {', '.join(CONNECTOR_TYPES)}."
        )
    if row is not None and "connector_id" in values and not values["connector_id"]:
        raise errors.HTTPBadRequest("Volume connector field connector_id cannot be empty.")
    _powered_off(req, "volume connector", values, row)
    return values


def _check_target(req: base.ApiRequest, values: dict, row: Any) -> dict:
    index = values.get("boot_index")
    if "boot_index" in values and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        raise errors.HTTPBadRequest(
            f"Volume target field boot_index must be a non-negative integer, not {index!r}."
        )
    for name in ("volume_type", "volume_id"):
        if name in values and not values[name]:
            raise errors.HTTPBadRequest(f"Volume target field {name} cannot be empty.")
    _powered_off(req, "volume target", values, row)
    return values


CONNECTORS = records.Spec(
    path="volume/connectors",
    key="connectors",
    what="volume connector",
    minor=versions.VOLUME,
    store=db_connectors.STORE,
    fields={**_COMMON, "type": 32, "connector_id": 32},
    list_fields=("uuid", "type", "connector_id"),
    writable={
        "uuid": (32, UUID),
        "node_uuid": (32, UUID),
        "type": (32, STRING),
        "connector_id": (32, STRING),
        "extra": (32, OBJECT),
    },
    required=("node_uuid", "type", "connector_id"),
    mandatory=frozenset({"/node_uuid", "/type", "/connector_id"}),
    has_node=True,
    check=_check_connector,
)

TARGETS = records.Spec(
    path="volume/targets",
    key="targets",
    what="volume target",
    minor=versions.VOLUME,
    store=db_targets.STORE,
    fields={**_COMMON, "volume_type": 32, "properties": 32, "boot_index": 32, "volume_id": 32},
    list_fields=("uuid", "volume_type", "boot_index", "volume_id"),
    writable={
        "uuid": (32, UUID),
        "node_uuid": (32, UUID),
        "volume_type": (32, STRING),
        "properties": (32, OBJECT),
        "boot_index": (32, INT),
        "volume_id": (32, STRING),
        "extra": (32, OBJECT),
    },
    required=("node_uuid", "volume_type", "boot_index", "volume_id"),
    mandatory=frozenset({"/node_uuid", "/volume_type", "/boot_index", "/volume_id"}),
    has_node=True,
    check=_check_target,
    json_fields=("extra", "properties"),
)


def _root(req: base.ApiRequest, prefix: str) -> dict:
    body: dict[str, Any] = {"links": [{"href": f"{base.base_url(req)}/v1/{prefix}/", "rel": "self"}]}
    for key in ("connectors", "targets"):
        body[key] = [{"href": f"{base.base_url(req)}/v1/{prefix}/{key}", "rel": "self"}]
    return body


def volume_root(req: base.ApiRequest) -> webob.Response:
    """GET /v1/volume: links to the connectors and targets."""
    base.require_version(req, versions.VOLUME)
    return base.json_response(_root(req, "volume"))


def node_volume_root(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/volume."""
    base.require_version(req, versions.VOLUME)
    node = dbread.get_node(req, node_ident)
    return base.json_response(_root(req, f"nodes/{node.uuid}/volume"))


def node_list(req: base.ApiRequest, node_ident: str, spec: records.Spec) -> webob.Response:
    """GET /v1/nodes/{node}/volume/connectors|targets."""
    base.require_version(req, versions.VOLUME)
    node = dbread.get_node(req, node_ident)
    return records.list_rows(req, spec, False, f"nodes/{node.uuid}/{spec.path}", node=node)


def register(router: Router) -> None:
    """Add the volume routes."""
    router.add("GET", "/v1/volume", volume_root)
    router.add("GET", "/v1/nodes/{node_ident}/volume", node_volume_root)
    router.add(
        "GET",
        "/v1/nodes/{node_ident}/volume/connectors",
        lambda req, node_ident: node_list(req, node_ident, CONNECTORS),
    )
    router.add(
        "GET",
        "/v1/nodes/{node_ident}/volume/targets",
        lambda req, node_ident: node_list(req, node_ident, TARGETS),
    )
    records.register(router, CONNECTORS)
    records.register(router, TARGETS)
