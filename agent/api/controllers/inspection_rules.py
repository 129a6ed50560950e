"""/v1/inspection_rules (1.96+): conditions on a stored inventory and actions on its node, in
Ironic's rule language; a sensitive rule's conditions and actions are never shown."""

from __future__ import annotations

from typing import Any

from agent.api import base, errors, records, versions
from agent.api.router import Router
from agent.api.validation import BOOL, INT, JSON, STRING, UUID
from agent.common import rules as rules_engine
from agent.db import inspection_rules as db_rules

M = versions.INSPECTION_RULES
PHASES = ("main",)
_MULTIPLE = ("any", "all", "first", "last")


def _check_ops(items: Any, kind: str, known: dict) -> list:
    if not isinstance(items, list):
        raise errors.HTTPBadRequest(f"Inspection rule {kind}s must be a list, not {items!r}.")
    for index, item in enumerate(items):
        at = f"Inspection rule {kind}s[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("op"), str):
            raise errors.HTTPBadRequest(f'{at} must be an object with an "op".')
        unknown = sorted(set(item) - {"op", "args", "multiple", "loop"})
        if unknown:
            raise errors.HTTPBadRequest(f"{at} has unknown key(s) {', '.join(unknown)}.")
        op = item["op"].lstrip("!")
        if op not in known:
            raise errors.HTTPBadRequest(f"{at}: unknown {kind} {op!r}; known: {', '.join(sorted(known))}.")
        args = item.get("args", [])
        if not isinstance(args, list | dict):
            raise errors.HTTPBadRequest(f"{at}.args must be a list or an object, not {args!r}.")
        count = len(args)
        low, high = known[op]
        if not low <= count <= high:
            raise errors.HTTPBadRequest(f"{at}: {op} takes {low} to {high} arguments, got {count}.")
        if item.get("multiple", "any") not in _MULTIPLE:
            raise errors.HTTPBadRequest(f"{at}.multiple must be one of {', '.join(_MULTIPLE)}.")
    return items


def _check(req: base.ApiRequest, values: dict, row: Any) -> dict:
    if values.get("phase") is not None and values["phase"] not in PHASES:
        raise errors.HTTPBadRequest(
            f"Inspection rule phase {values['phase']!r} is not one of {', '.join(PHASES)}."
        )
    if "conditions" in values:
        conditions = values["conditions"] or []
        values["conditions"] = _check_ops(conditions, "condition", rules_engine.CONDITIONS)
    if "actions" in values:
        if row is None and not values["actions"]:
            raise errors.HTTPBadRequest("An inspection rule needs at least one action.")
        values["actions"] = _check_ops(values["actions"], "action", rules_engine.ACTIONS)
    if row is not None and row.sensitive and ({"conditions", "actions"} & set(values)):
        raise errors.HTTPBadRequest("A sensitive inspection rule's conditions and actions cannot be changed.")
    return values


def _hide(req: base.ApiRequest, data: dict) -> dict:
    if data.get("sensitive"):
        return {"conditions": None, "actions": None}
    return {}


SPEC = records.Spec(
    path="inspection_rules",
    key="inspection_rules",
    what="inspection rule",
    minor=M,
    store=db_rules.STORE,
    fields={
        k: M
        for k in (
            "uuid",
            "description",
            "priority",
            "sensitive",
            "phase",
            "conditions",
            "actions",
            "created_at",
            "updated_at",
            "links",
        )
    },  # fmt: skip
    list_fields=("uuid", "description", "priority", "phase", "sensitive"),
    writable={
        "uuid": (M, UUID),
        "description": (M, STRING),
        "priority": (M, INT),
        "sensitive": (M, BOOL),
        "phase": (M, STRING),
        "conditions": (M, JSON),
        "actions": (M, JSON),
    },
    required=("actions",),
    admin_only=True,
    check=_check,
    extra=_hide,
    json_fields=("conditions", "actions"),
)


def register(router: Router) -> None:
    """Add the inspection rule routes."""
    records.register(router, SPEC)
