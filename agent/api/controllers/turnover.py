"""Kiln extension: /v1/nodes/{node}/kiln/turnover, the signed records of the node's cleanings.

Each record says what a cleaning erased and how, whether GPU memory was cleared, who held the
node before, and when (agent.conductor.turnover). Administrators and the node's owner read them;
a lessee does not (a record names the lessees before it). Records outlive their node: an
administrator reads a deleted node's records by its UUID.
"""

from __future__ import annotations

import webob
from oslo_utils import uuidutils

from agent.api import base, dbread
from agent.api.router import Router
from agent.common import evidence, exception
from agent.db import api as db_api


def _node_uuid(req: base.ApiRequest, node_ident: str) -> str:
    try:
        node = dbread.get_node(req, node_ident)
    except exception.NodeNotFound:
        if dbread.scope(req) is None and uuidutils.is_uuid_like(node_ident):
            return node_ident  # a deleted node's evidence, for an administrator
        raise
    dbread.node_for_owner_only(req, node, "read the node's turnover records")
    return node.uuid


def list_records(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/kiln/turnover: {"records": [...]}, oldest first."""
    rows = db_api.list_turnover_records(_node_uuid(req, node_ident))
    return base.json_response({"records": [evidence.served(row) for row in rows]})


def get_record(req: base.ApiRequest, node_ident: str, record_uuid: str) -> webob.Response:
    """GET /v1/nodes/{node}/kiln/turnover/{record}: one record, as kiln-verify-certificate reads it."""
    row = db_api.get_turnover_record(_node_uuid(req, node_ident), record_uuid)
    return base.json_response(evidence.served(row))


def register(router: Router) -> None:
    """Add the turnover routes."""
    router.add("GET", "/v1/nodes/{node_ident}/kiln/turnover", list_records)
    router.add("GET", "/v1/nodes/{node_ident}/kiln/turnover/{record_uuid}", get_record)
