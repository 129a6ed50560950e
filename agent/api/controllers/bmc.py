"""A node's BIOS settings (1.40; registry fields 1.74), firmware components (1.86) and target RAID
configuration (1.12: PUT /v1/nodes/{node}/states/raid), as Ironic serves them."""

from __future__ import annotations

from typing import Any

import webob

from agent.api import base, dbread, errors, versions
from agent.api.router import Router
from agent.common import exception, row_dicts
from agent.db import bios as db_bios
from agent.db import firmware as db_firmware

RAID = 12
BIOS = 40
BIOS_REGISTRY = 74

BIOS_FIELDS = ("name", "value")
BIOS_DETAIL_FIELDS = (*BIOS_FIELDS, *db_bios.REGISTRY_FIELDS)
_BIOS_VALID = {*BIOS_DETAIL_FIELDS, "created_at", "updated_at", "links"}
FIRMWARE_FIELDS = ("component", "initial_version", "current_version", "last_version_flashed")
_FIRMWARE_VALID = {*FIRMWARE_FIELDS, "created_at", "updated_at"}


def _selection(req: base.ApiRequest, minor: int, valid: set[str], what: str) -> tuple[bool, list[str] | None]:
    """(detail, fields) of a list request; both arrived at ``minor`` (406 before) and exclude each other."""
    detail = base.parse_bool(req.GET.get("detail"), "detail")
    if detail is not None:
        base.feature_version(req, minor, f"The detail query parameter on {what}")
    if "fields" in req.GET:
        base.feature_version(req, minor, f"The fields query parameter on {what}")
        if detail:
            raise errors.HTTPBadRequest("Can not specify ?detail=True and fields in the same request.")
    return bool(detail), base.parse_fields(req, valid)


def _bios_view(
    req: base.ApiRequest, node_uuid: str, row: Any, names: tuple[str, ...], fields: list[str] | None
) -> dict:
    values = row_dicts.plain_value
    full = {name: getattr(row, name) for name in names}
    full.update(
        created_at=values(row.created_at),
        updated_at=values(row.updated_at),
        links=base.links(req, "nodes", node_uuid, f"/bios/{row.name}"),
    )
    if fields is not None:
        full = {k: full[k] for k in (*fields, "links") if k in full}
    return full


def list_bios(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/bios: the settings its bios interface last read from the BMC."""
    base.require_version(req, BIOS)
    detail, fields = _selection(req, BIOS_REGISTRY, _BIOS_VALID, "BIOS settings")
    node = dbread.get_node(req, node_ident)
    names = BIOS_DETAIL_FIELDS if detail or fields else BIOS_FIELDS
    rows = db_bios.list_bios_settings(node.id)
    return base.json_response({"bios": [_bios_view(req, node.uuid, r, names, fields) for r in rows]})


def get_bios(req: base.ApiRequest, node_ident: str, setting_name: str) -> webob.Response:
    """GET /v1/nodes/{node}/bios/{name}: {name: setting}, with the registry fields from 1.74."""
    base.require_version(req, BIOS)
    node = dbread.get_node(req, node_ident)
    try:
        row = db_bios.get_bios_setting(node.id, node.uuid, setting_name)
    except exception.BIOSSettingNotFound as exc:
        raise errors.HTTPNotFound(str(exc)) from None
    names = BIOS_DETAIL_FIELDS if req.at_least(BIOS_REGISTRY) else BIOS_FIELDS
    return base.json_response({setting_name: _bios_view(req, node.uuid, row, names, None)})


def list_firmware(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/firmware: the components its firmware interface last read (no-firmware: none)."""
    base.require_version(req, versions.FIRMWARE)
    _detail, fields = _selection(req, versions.FIRMWARE, _FIRMWARE_VALID, "firmware components")
    node = dbread.get_node(req, node_ident)
    items = []
    for row in db_firmware.list_firmware_components(node.id):
        full = {name: getattr(row, name) for name in FIRMWARE_FIELDS}
        full.update(
            created_at=row_dicts.plain_value(row.created_at), updated_at=row_dicts.plain_value(row.updated_at)
        )
        items.append({k: full[k] for k in fields} if fields is not None else full)
    return base.json_response({"firmware": items})


def set_raid(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """PUT /v1/nodes/{node}/states/raid: store the target RAID configuration ({} clears it); 204."""
    base.feature_version(req, RAID, "Setting a node's target RAID configuration")
    node = dbread.get_node(req, node_ident)
    dbread.node_for_owner_only(req, node, "set its target RAID configuration")
    body = base.json_object(req, "a target RAID configuration")
    try:
        req.rpcapi.set_target_raid_config(req.context, node, body)
    except exception.UnsupportedDriverExtension as exc:
        # RAID is optional: a node whose raid interface has none answers 404, as Ironic does.
        raise errors.HTTPNotFound(str(exc)) from None
    return base.no_content()


def register(router: Router) -> None:
    """Add the BIOS, firmware and RAID routes."""
    router.add("GET", "/v1/nodes/{node_ident}/bios", list_bios)
    router.add("GET", "/v1/nodes/{node_ident}/bios/{setting_name}", get_bios)
    router.add("GET", "/v1/nodes/{node_ident}/firmware", list_firmware)
    router.add("PUT", "/v1/nodes/{node_ident}/states/raid", set_raid)
