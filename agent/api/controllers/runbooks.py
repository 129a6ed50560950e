"""/v1/runbooks (1.92+; description, traits and logical names 1.112+): named steps that run on a
manageable node (as cleaning) or an active one (as servicing), on nodes sharing one of its traits."""

from __future__ import annotations

from typing import Any

import webob

from agent.api import base, dbread, errors, records, validation, versions
from agent.api.controllers.deploy_templates import check_steps
from agent.api.router import Router
from agent.api.validation import BOOL, JSON, NAME, OBJECT, STRING, UUID
from agent.db import runbooks as db_runbooks

M, T = versions.RUNBOOKS, versions.RUNBOOK_TRAITS
_FIELDS = ("uuid", "name", "steps", "disable_ramdisk", "public", "owner", "extra", "created_at", "updated_at")


def _check(req: base.ApiRequest, values: dict, row: Any) -> dict:
    if values.get("name") is not None and not req.at_least(T):
        # Before 1.112 a runbook's name is a trait.
        validation.check_trait(values["name"], "Runbook name")
    if "steps" in values:
        values["steps"] = check_steps(values["steps"], "Runbook", rank="order")
    if "traits" in values:
        values["traits"] = validation.check_traits(values["traits"] or [], "Runbook")
    project = dbread.scope(req)
    if row is None and project is not None:
        values.setdefault("owner", project)
    return values


SPEC = records.Spec(
    path="runbooks",
    key="runbooks",
    what="runbook",
    minor=M,
    store=db_runbooks.STORE,
    fields={**{k: M for k in _FIELDS}, "links": M, "description": T, "traits": T},
    list_fields=("uuid", "name"),
    writable={
        "uuid": (M, UUID),
        "name": (M, NAME),
        "steps": (M, JSON),
        "disable_ramdisk": (M, BOOL),
        "public": (M, BOOL),
        "owner": (M, STRING),
        "extra": (M, OBJECT),
        "description": (T, STRING),
    },
    required=("name", "steps"),
    mandatory=frozenset({"/name", "/steps"}),
    check=_check,
    json_fields=("extra", "steps", "traits"),
)


def _traits(req: base.ApiRequest, ident: str) -> tuple[Any, list[str]]:
    base.require_version(req, T)
    row = records.get_row(req, SPEC, ident)
    return row, list(row.traits or [])


def _save(row: Any, traits: list[str]) -> webob.Response:
    db_runbooks.STORE.update(row.uuid, {"traits": sorted(set(traits))})
    return base.no_content()


def list_traits(req: base.ApiRequest, ident: str) -> webob.Response:
    """GET /v1/runbooks/{runbook}/traits."""
    return base.json_response({"traits": _traits(req, ident)[1]})


def set_traits(req: base.ApiRequest, ident: str) -> webob.Response:
    """PUT /v1/runbooks/{runbook}/traits: replace them all."""
    row, _ = _traits(req, ident)
    body = base.json_object(req, "the runbook's traits")
    if set(body) != {"traits"}:
        raise errors.HTTPBadRequest('The body must be {"traits": [...]} and nothing else.')
    return _save(row, validation.check_traits(body["traits"], f"Runbook {row.uuid}"))


def add_trait(req: base.ApiRequest, ident: str, trait: str) -> webob.Response:
    """PUT /v1/runbooks/{runbook}/traits/{trait}."""
    row, traits = _traits(req, ident)
    validation.check_trait(trait, f"Runbook {row.uuid}")
    return _save(row, [*traits, trait])


def remove_trait(req: base.ApiRequest, ident: str, trait: str) -> webob.Response:
    """DELETE /v1/runbooks/{runbook}/traits/{trait} (a trait it lacks: nothing to do)."""
    row, traits = _traits(req, ident)
    return _save(row, [t for t in traits if t != trait])


def steps_for_node(
    req: base.ApiRequest, ident: Any, node: Any, target: str
) -> tuple[list[dict], bool | None]:
    """The steps (in the runbook's order) and disable_ramdisk of runbook ``ident`` run on ``node``
    with provision ``target``: "clean" on a manageable node, "service" on an active one; the runbook
    must share a trait with the node (before 1.112: its name is one of the node's traits)."""
    base.feature_version(req, M, "Running a runbook")
    if target not in ("clean", "service"):
        raise errors.HTTPBadRequest(
            f'A runbook runs with target "clean" (on a manageable node) or "service" (on an active one), '
            f'not "{target}".'
        )
    if not isinstance(ident, str) or not ident:
        raise errors.HTTPBadRequest("runbook must be a runbook's UUID or name.")
    row = records.get_row(req, SPEC, ident)
    project = dbread.scope(req)
    if project is not None and not row.public and row.owner != project:
        raise row_not_found(ident)
    wanted = set(row.traits or []) | {row.name}
    if not wanted & set(node.traits):
        raise errors.HTTPBadRequest(
            f"Runbook {row.name} cannot run on node {node.uuid}: the node has none of its traits "
            f"({', '.join(sorted(wanted))})."
        )
    steps = sorted(row.steps or [], key=lambda s: s["order"])
    return [{k: s[k] for k in ("interface", "step", "args")} for s in steps], row.disable_ramdisk or None


def row_not_found(ident: str) -> Exception:
    """The runbook's 404."""
    return db_runbooks.STORE.not_found(ident)


def register(router: Router) -> None:
    """Add the runbook routes."""
    router.add("GET", "/v1/runbooks/{ident}/traits", list_traits)
    router.add("PUT", "/v1/runbooks/{ident}/traits", set_traits)
    router.add("PUT", "/v1/runbooks/{ident}/traits/{trait}", add_trait)
    router.add("DELETE", "/v1/runbooks/{ident}/traits/{trait}", remove_trait)
    records.register(router, SPEC)
