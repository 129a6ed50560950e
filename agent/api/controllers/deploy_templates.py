"""/v1/deploy_templates (1.55+): deploy steps named by a trait. At deploy time the instance's traits
(instance_info traits that the node has) select the templates whose steps join the deployment."""

from __future__ import annotations

from typing import Any

from agent.api import base, errors, records, validation, versions
from agent.api.router import Router
from agent.api.validation import JSON, NAME, OBJECT, UUID
from agent.db import deploy_templates as db_templates

#: Interfaces a deploy template's step may name (Ironic's deploy step interfaces).
STEP_INTERFACES = ("bios", "deploy", "firmware", "management", "network", "power", "raid")
M = versions.DEPLOY_TEMPLATES


def check_steps(steps: Any, where: str, rank: str = "priority") -> list[dict]:
    """Steps checked: {interface, step, args, <rank>} each (rank: priority, or a runbook's order),
    at least one, no step twice."""
    if not isinstance(steps, list) or not steps:
        raise errors.HTTPBadRequest(f"{where}: steps must be a non-empty list of deploy steps.")
    seen: set[tuple[str, str]] = set()
    out = []
    for index, step in enumerate(steps):
        at = f"{where}: steps[{index}]"
        if not isinstance(step, dict):
            raise errors.HTTPBadRequest(f"{at} must be an object, not {step!r}.")
        keys = {"interface", "step", "args", rank}
        missing = sorted(keys - set(step))
        unknown = sorted(set(step) - keys)
        if missing or unknown:
            raise errors.HTTPBadRequest(
                f"{at} needs interface, step, args and {rank}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else "")
                + "."
            )
        if step["interface"] not in STEP_INTERFACES:
            raise errors.HTTPBadRequest(
                f"{at}.interface {step['interface']!r} is not one of {', '.join(STEP_INTERFACES)}."
            )
        if not isinstance(step["step"], str) or not step["step"]:
            raise errors.HTTPBadRequest(f"{at}.step must be a non-empty string.")
        if not isinstance(step["args"], dict):
            raise errors.HTTPBadRequest(f"{at}.args must be an object.")
        priority = step[rank]
        if isinstance(priority, str) and priority.isdigit():
            priority = int(priority)
        if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
            raise errors.HTTPBadRequest(f"{at}.{rank} must be an integer of 0 or more, not {priority!r}.")
        key = (step["interface"], step["step"])
        if key in seen:
            raise errors.HTTPBadRequest(f"{at} repeats {key[0]}.{key[1]}; a template names each step once.")
        seen.add(key)
        out.append({**step, rank: priority})
    return out


def _check(req: base.ApiRequest, values: dict, row: Any) -> dict:
    if "name" in values:
        validation.check_trait(values["name"], "Deploy template name")
    if "steps" in values:
        values["steps"] = check_steps(values["steps"], "Deploy template")
    return values


SPEC = records.Spec(
    path="deploy_templates",
    key="deploy_templates",
    what="deploy template",
    minor=M,
    store=db_templates.STORE,
    fields={k: M for k in ("uuid", "name", "steps", "extra", "created_at", "updated_at", "links")},
    list_fields=("uuid", "name"),
    writable={"uuid": (M, UUID), "name": (M, NAME), "steps": (M, JSON), "extra": (M, OBJECT)},
    required=("name", "steps"),
    mandatory=frozenset({"/name", "/steps"}),
    admin_only=True,
    check=_check,
    json_fields=("extra", "steps"),
)


def register(router: Router) -> None:
    """Add the deploy template routes."""
    records.register(router, SPEC)
