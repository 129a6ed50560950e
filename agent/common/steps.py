"""The one rule for a list of steps as the API and the conductor take it (clean_steps, deploy_steps)."""

from __future__ import annotations

from typing import Any

from agent.common import exception

STEP_KEYS = frozenset({"interface", "step", "args", "priority"})


def check_steps(steps: Any, name: str, node: str | None = None, required: bool = False) -> list[dict] | None:
    """Validate ``steps`` (a list of {"interface", "step", "args"?, "priority"?}); return it.

    None is returned for None unless ``required``. Anything else raises InvalidParameterValue (or
    MissingParameterValue) naming the node, the list and the index of the bad step.
    """
    where = f"Node {node}: " if node else ""
    if steps is None:
        if required:
            raise exception.MissingParameterValue(err=f"{where}{name} is required for this target.")
        return None
    if not isinstance(steps, list):
        raise exception.InvalidParameterValue(err=f"{where}{name} must be a list of steps, not {steps!r}.")
    for index, step in enumerate(steps):
        if (
            not isinstance(step, dict)
            or not isinstance(step.get("interface"), str)
            or not isinstance(step.get("step"), str)
            or not step["interface"]
            or not step["step"]
        ):
            raise exception.InvalidParameterValue(
                err=f'{where}{name}[{index}] must be an object with "interface", "step" and optional '
                f'"args": {step!r}.'
            )
        unknown = sorted(set(step) - STEP_KEYS)
        if unknown:
            raise exception.InvalidParameterValue(
                err=f"{where}{name}[{index}] has unknown key(s): {', '.join(unknown)}."
            )
        if "args" in step and not isinstance(step["args"], dict):
            raise exception.InvalidParameterValue(err=f"{where}{name}[{index}].args must be an object.")
        priority = step.get("priority")
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
            raise exception.InvalidParameterValue(
                err=f"{where}{name}[{index}].priority must be an integer, not {priority!r}."
            )
    return steps
