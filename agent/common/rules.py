"""Ironic's inspection rule language: conditions on the inventory, plugin data and node, and the
actions they trigger on the node. The API checks rules against these tables; the conductor runs them."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

#: condition -> (fewest, most) arguments.
CONDITIONS: dict[str, tuple[int, int]] = {
    "is-true": (1, 1),
    "is-false": (1, 1),
    "is-none": (1, 1),
    "is-empty": (1, 1),
    "eq": (2, 2),
    "lt": (2, 2),
    "gt": (2, 2),
    "le": (2, 2),
    "ge": (2, 2),
    "ne": (2, 2),
    "in-net": (2, 2),
    "matches": (2, 2),
    "contains": (2, 2),
    "one-of": (2, 2),
}

#: action -> (fewest, most) arguments.
ACTIONS: dict[str, tuple[int, int]] = {
    "fail": (1, 1),
    "set-attribute": (2, 2),
    "extend-attribute": (2, 3),
    "del-attribute": (1, 1),
    "set-capability": (2, 2),
    "unset-capability": (1, 1),
    "add-trait": (1, 1),
    "remove-trait": (1, 1),
    "set-plugin-data": (2, 2),
    "extend-plugin-data": (2, 3),
    "unset-plugin-data": (1, 1),
    "log": (1, 2),
    "set-port-attribute": (3, 3),
    "extend-port-attribute": (3, 4),
    "del-port-attribute": (2, 2),
}

_REF = re.compile(r"^\{([^{}]+)\}$")
_TRUE = ("true", "yes", "1", "on")


def lookup(path: str, sources: dict[str, Any]) -> Any:
    """The value at a dotted ``path`` such as ``inventory.memory.physical_mb`` or ``node.driver``."""
    value: Any = sources
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def resolve(arg: Any, sources: dict[str, Any]) -> Any:
    """An argument with its ``{path}`` reference replaced (a whole-string reference keeps the type)."""
    if isinstance(arg, str):
        whole = _REF.match(arg)
        if whole:
            return lookup(whole.group(1), sources)
        return re.sub(r"\{([^{}]+)\}", lambda m: str(lookup(m.group(1), sources)), arg)
    if isinstance(arg, list):
        return [resolve(a, sources) for a in arg]
    if isinstance(arg, dict):
        return {k: resolve(v, sources) for k, v in arg.items()}
    return arg


def _number(value: Any) -> float:
    return float(value)


def _test(op: str, args: list) -> bool:
    first = args[0]
    if op == "is-true":
        return first is True or (isinstance(first, str) and first.lower() in _TRUE) or first == 1
    if op == "is-false":
        return first is False or (isinstance(first, str) and first.lower() not in _TRUE) or first == 0
    if op == "is-none":
        return first is None
    if op == "is-empty":
        return first in (None, "", [], {})
    second = args[1]
    if op in ("eq", "ne"):
        try:
            same = _number(first) == _number(second)
        except (TypeError, ValueError):
            same = first == second
        return same if op == "eq" else not same
    if op in ("lt", "gt", "le", "ge"):
        try:
            a, b = _number(first), _number(second)
        except (TypeError, ValueError):
            return False
        return {"lt": a < b, "gt": a > b, "le": a <= b, "ge": a >= b}[op]
    if op == "in-net":
        try:
            return ipaddress.ip_address(str(first)) in ipaddress.ip_network(str(second), strict=False)
        except ValueError:
            return False
    if op == "matches":
        return first is not None and re.fullmatch(str(second), str(first)) is not None
    if op == "contains":
        return first is not None and re.search(str(second), str(first)) is not None
    if op == "one-of":
        return first in (second or [])
    raise ValueError(f"unknown condition {op!r}")


def check_condition(cond: dict, sources: dict[str, Any]) -> bool:
    """Whether one condition holds ("!op" inverts it; with "loop", "multiple" says how many must)."""
    op = cond["op"]
    invert = op.startswith("!")
    op = op.lstrip("!")
    loop = cond.get("loop")
    if loop is None:
        results = [_test(op, resolve(_args(cond), sources))]
    else:
        items = resolve(loop, sources) or []
        results = [_test(op, resolve(_args(cond), {**sources, "item": item})) for item in items]
    multiple = cond.get("multiple", "any")
    if not results:
        held = False
    elif multiple == "all":
        held = all(results)
    elif multiple == "first":
        held = results[0]
    elif multiple == "last":
        held = results[-1]
    else:
        held = any(results)
    return not held if invert else held


def _args(item: dict) -> list:
    args = item.get("args", [])
    return list(args.values()) if isinstance(args, dict) else list(args)


def rule_matches(rule: Any, sources: dict[str, Any]) -> bool:
    """Whether every condition of ``rule`` holds."""
    return all(check_condition(c, sources) for c in (rule.conditions or []))
