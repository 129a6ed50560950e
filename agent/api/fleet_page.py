"""The fleet page: a read-only HTML view of the fleet and of one node, rendered on the server.

GET /fleet lists the nodes the caller may see with filters in the query string (provision state,
GPU SKU, owner, GPU quarantine, maintenance); GET /fleet/nodes/{node} shows one node's hardware
(GPUs with their NUMA node and PCIe placement, NICs, disks), its health, its inventory history
and its turnover records with whether each signature verifies. It sits behind the API's own
authentication (noauth, http_basic or keystone) and sees what the API would show the caller.
Jinja2 renders it with autoescaping on; the page has no JavaScript and loads nothing from
elsewhere (its CSS is inline), so it works on networks that reach no internet.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlencode

import jinja2
import webob
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from oslo_config import cfg

from agent.api import base, dbread, errors, fleet_hardware
from agent.api.router import Router
from agent.common import evidence, exception
from agent.conductor import gpu_acceptance, turnover
from agent.conductor import traits as trait_rules
from agent.db import api as db_api
from agent.db import fleet as db_fleet
from agent.demo import fleet as fleet_cells

CONF = cfg.CONF
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
SKU_PREFIX = "CUSTOM_GPU_"
QUERY_PARAMS = ("state", "sku", "owner", "quarantine", "maintenance", "limit", "marker")
DEFAULT_LIMIT = 100
HISTORY_ROWS = 50
_SKU = re.compile(r"^[A-Z0-9_]{1,200}$")
#: No script, no frames, nothing fetched from elsewhere: the page is markup and inline style only.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def html_response(template: str, status: int = 200, **context: Any) -> webob.Response:
    """Render ``template`` with ``context`` into an HTML response."""
    body = _ENV.get_template(template).render(**context)
    resp = webob.Response(status=status, headers=dict(_HEADERS))
    resp.content_type = "text/html"
    resp.charset = "utf-8"
    resp.text = body
    return resp


def _error_page(req: base.ApiRequest, code: int, message: str) -> webob.Response:
    return html_response("error.html", status=code, root=_root(req), code=code, message=message)


def _root(req: base.ApiRequest) -> str:
    return f"{req.script_name}/fleet"


def _choice(req: base.ApiRequest, name: str) -> str | None:
    value = req.GET.get(name, "").strip()
    return value or None


def _yes_no(req: base.ApiRequest, name: str) -> bool | None:
    value = _choice(req, name)
    return None if value is None else base.parse_bool(value, name)


def parse_filters(req: base.ApiRequest) -> tuple[db_fleet.FleetFilter, dict[str, str]]:
    """The fleet filter of the query string and the filters as given (for the form); 400 on bad ones."""
    unknown = sorted(set(req.GET) - set(QUERY_PARAMS))
    if unknown:
        raise errors.HTTPBadRequest(
            f"Unknown query parameter(s) {', '.join(unknown)} on /fleet; known: {', '.join(QUERY_PARAMS)}."
        )
    sku = _choice(req, "sku")
    if sku is not None:
        sku = sku.upper().removeprefix(SKU_PREFIX)
        if not _SKU.match(sku):
            raise errors.HTTPBadRequest(
                f"Query parameter sku must be a GPU SKU such as H100_SXM5_80GB (letters, digits, _), "
                f"not {sku!r}."
            )
    quarantine, maintenance = _yes_no(req, "quarantine"), _yes_no(req, "maintenance")
    quarantine_trait = (gpu_acceptance.TRAIT_QUARANTINE,)
    where = db_fleet.FleetFilter(
        provision_state=_choice(req, "state"),
        owner=_choice(req, "owner"),
        traits=(f"{SKU_PREFIX}{sku}",) * bool(sku) + quarantine_trait * (quarantine is True),
        without_traits=quarantine_trait * (quarantine is False),
        maintenance=maintenance,
        project=dbread.scope(req),
    )
    yes_no = {True: "yes", False: "no", None: ""}
    given = {
        "state": where.provision_state or "",
        "sku": sku or "",
        "owner": where.owner or "",
        "quarantine": yes_no[quarantine],
        "maintenance": yes_no[maintenance],
    }
    return where, given


def _limit(req: base.ApiRequest) -> int:
    if not req.GET.get("limit"):
        return min(DEFAULT_LIMIT, CONF.api.max_limit)
    return base.parse_limit(req)


def _health(node: Any, traits: list[str]) -> list[tuple[str, str]]:
    """(kind, text) badges: quarantine, maintenance, fault, last error."""
    badges = []
    if gpu_acceptance.TRAIT_QUARANTINE in traits:
        badges.append(("bad", "GPU quarantine"))
    if trait_rules.TRAIT_GPU_LINK_DEGRADED in traits:
        badges.append(("warn", "GPU link degraded"))
    if node.maintenance:
        badges.append(("warn", "maintenance"))
    if node.fault:
        badges.append(("bad", f"fault: {node.fault}"))
    if node.last_error:
        badges.append(("bad", "error"))
    return badges


def fleet(req: base.ApiRequest) -> webob.Response:
    """GET /fleet: the fleet as a table, narrowed by the query string."""
    try:
        where, given = parse_filters(req)
        limit = _limit(req)
        nodes = db_fleet.list_fleet(where, limit + 1, _choice(req, "marker"))
    except errors.ApiError as exc:
        return _error_page(req, exc.code, exc.faultstring)
    except exception.InvalidParameterValue as exc:
        return _error_page(req, 400, str(exc))
    more = len(nodes) > limit
    nodes = nodes[:limit]
    traits = db_fleet.traits_of([n.id for n in nodes])
    inventories = db_fleet.table_inventories_of([n.id for n in nodes])
    rows = []
    for node in nodes:
        cells = fleet_cells.summarise(
            node.name or node.uuid, node.provision_state or "-", inventories.get(node.id)
        )
        rows.append({"node": node, "cells": cells, "health": _health(node, traits[node.id])})
    known = trait_rules.sku_traits()
    facets = db_fleet.facets(where.project, SKU_PREFIX)
    skus = [t.removeprefix(SKU_PREFIX) for t in facets["traits"] if t in known]
    next_url = None
    if more and nodes:
        params = [(k, v) for k, v in given.items() if v] + [("limit", str(limit)), ("marker", nodes[-1].uuid)]
        next_url = f"{_root(req)}?{urlencode(params)}"
    return html_response(
        "fleet.html",
        root=_root(req),
        rows=rows,
        given=given,
        states=facets["states"],
        owners=facets["owners"],
        skus=skus,
        total=db_fleet.count_fleet(db_fleet.FleetFilter(project=where.project)),
        matching=db_fleet.count_fleet(where),
        next_url=next_url,
    )


def public_key() -> tuple[ed25519.Ed25519PublicKey | None, str]:
    """The turnover public key and its path, or None and why it is not there."""
    path = CONF.turnover.public_key_file or turnover.key_path() + ".pub"
    try:
        with open(path, "rb") as fh:
            key = serialization.load_pem_public_key(fh.read())
    except OSError as exc:
        return None, f"no public key to check against: {path}: {exc.strerror} (set [turnover]public_key_file)"
    except ValueError as exc:
        return None, f"{path} is not a PEM public key: {exc}"
    if not isinstance(key, ed25519.Ed25519PublicKey):
        return None, f"{path} holds a {type(key).__name__}, not an ed25519 key"
    return key, path


def turnover_rows(node_uuid: str) -> list[dict[str, Any]]:
    """The node's turnover records, oldest first, each with what it says and whether it verifies."""
    key, where = public_key()
    rows = []
    for row in db_api.list_turnover_records(node_uuid):
        document = evidence.served(row)
        if key is None:
            status, verdict = "unchecked", f"not checked: {where}"
        else:
            try:
                evidence.verify(document, key)
                status, verdict = "ok", "signature verifies"
            except evidence.VerifyError as exc:
                status, verdict = "bad", f"does NOT verify: {exc}"
        content = document["content"] if isinstance(document["content"], dict) else {}
        gpu = content.get("gpu_memory") if isinstance(content.get("gpu_memory"), dict) else {}
        disks = [d for d in content.get("disks") or [] if isinstance(d, dict)]
        before = content.get("before") if isinstance(content.get("before"), dict) else {}
        rows.append(
            {
                "uuid": row.uuid,
                "created_at": document["created_at"] or "-",
                "cleaning": content.get("cleaning") or "-",
                "outcome": content.get("outcome") or "-",
                "started_at": content.get("started_at") or "-",
                "ended_at": content.get("ended_at") or "-",
                "before": f"owner {before.get('owner') or '-'}, lessee {before.get('lessee') or '-'}",
                "disks": ", ".join(f"{d.get('disk')} ({d.get('method') or d.get('step')})" for d in disks)
                or "-",
                "gpu_memory": "cleared" if gpu.get("cleared") else f"not cleared: {gpu.get('why') or '-'}",
                "key_id": row.key_id[:16],
                "status": status,
                "verdict": verdict,
            }
        )
    return rows


def _history(node_id: int) -> list[dict[str, str]]:
    rows = []
    for entry in db_fleet.history_of(node_id, HISTORY_ROWS):
        changes = entry.get("changes") if isinstance(entry.get("changes"), dict) else {}
        at = entry.get("created_at")
        rows.append(
            {
                "at": at.isoformat(timespec="seconds") if at is not None else "-",
                "event": "Inventory reported"
                + (f"; changed: {', '.join(sorted(changes))}" if changes else ""),
            }
        )
    return rows


def node_page(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /fleet/nodes/{node}: one node's hardware, health, history and turnover records."""
    try:
        node = dbread.get_node(req, node_ident)
    except exception.NodeNotFound:
        return _error_page(req, 404, f"Node {node_ident} could not be found (or is not visible to you).")
    except errors.ApiError as exc:
        return _error_page(req, exc.code, exc.faultstring)
    traits = db_fleet.traits_of([node.id])[node.id]
    inventory = db_fleet.inventories_of([node.id]).get(node.id)
    quarantined = gpu_acceptance.TRAIT_QUARANTINE in traits
    gpus = fleet_hardware.gpu_rows(inventory)
    health = _health(node, traits)
    unhealthy = sum(1 for g in gpus if g["unhealthy"])
    if unhealthy:
        health.append(("bad", f"{unhealthy} GPU{'s' if unhealthy > 1 else ''} reporting errors"))
    try:
        dbread.node_for_owner_only(req, node, "read the node's turnover records")
        records, records_hidden = turnover_rows(node.uuid), None
    except errors.HTTPForbidden as exc:
        records, records_hidden = [], exc.faultstring
    return html_response(
        "node.html",
        root=_root(req),
        node=node,
        traits=traits,
        health=health,
        quarantined=quarantined,
        has_inventory=inventory is not None,
        system=fleet_hardware.system_facts(inventory),
        gpus=gpus,
        nics=fleet_hardware.nic_rows(inventory),
        disks=fleet_hardware.disk_rows(inventory),
        inventory_errors=fleet_hardware.inventory_errors(inventory),
        history=_history(node.id),
        records=records,
        records_hidden=records_hidden,
    )


def register(router: Router) -> None:
    """Add the fleet page's routes."""
    router.add("GET", "/fleet", fleet)
    router.add("GET", "/fleet/nodes/{node_ident}", node_page)
