"""Root device hints, as Ironic defines them, matched against the inventory's disks.

Hints are a dict of hint name to expression. A string hint without an operator means ``s==``, an
integer one ``==``; expressions may use oslo.utils' spec operators (``<in>``, ``<or>``, ``>=``,
``s!=`` ...). Matching is case-insensitive; ``size`` is in whole GiB (rounded down); ``rotational``
is a Boolean.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from oslo_utils import specs_matcher, strutils

from agent.node.steps.errors import StepError

GIB = 1 << 30
MIN_ROOT_BYTES = 4 * GIB

HINT_TYPES: dict[str, type] = {
    "size": int,
    "model": str,
    "wwn": str,
    "wwn_with_extension": str,
    "wwn_vendor_extension": str,
    "serial": str,
    "vendor": str,
    "name": str,
    "rotational": bool,
    "hctl": str,
    "by_path": str,
}

_GRAMMAR = specs_matcher.make_grammar()


def _split(expression: str, hint: str) -> tuple[str, list[str]]:
    """Split ``[op] value [op value]*`` into the operator and its lower-cased values."""
    expr = str(expression).strip().lower()
    if not expr:
        raise StepError(f"root device hint {hint!r} is empty")
    try:
        tokens = _GRAMMAR.parseString(expr)
    except Exception as exc:  # noqa: BLE001 - pyparsing's errors are many
        raise StepError(f"root device hint {hint!r}: cannot parse {expression!r}: {exc}") from exc
    if len(tokens) <= 1:
        return "", [expr]
    op = tokens[0]
    return op, [v.strip() for v in re.split(re.escape(op), expr) if v.strip()]


def _normalize_str(expression: str, hint: str) -> str:
    """Quote each value (spaces, specials) so specs_matcher compares whole values."""
    op, values = _split(expression, hint)
    if not op:
        return "s== " + quote(values[0])
    return " ".join(f"{op} {quote(v)}" for v in values) if op in ("<or>",) else f"{op} {quote(values[0])}"


def parse_hints(hints: dict | None) -> dict:
    """Validate and normalise root device hints; raise StepError naming the bad hint."""
    if not hints:
        return {}
    if not isinstance(hints, dict):
        raise StepError(f"root device hints must be an object, got {type(hints).__name__}")
    unknown = sorted(set(hints) - set(HINT_TYPES))
    if unknown:
        raise StepError(
            f"unknown root device hints {', '.join(unknown)}; valid hints: {', '.join(sorted(HINT_TYPES))}"
        )
    parsed: dict = {}
    for name, expr in hints.items():
        kind = HINT_TYPES[name]
        if kind is bool:
            try:
                parsed[name] = strutils.bool_from_string(expr, strict=True)
            except ValueError as exc:
                raise StepError(f"root device hint 'rotational' is not a Boolean: {expr!r}") from exc
        elif kind is int:
            op, values = _split(str(expr), name)
            for v in values:
                try:
                    number = int(v)
                except ValueError as exc:
                    raise StepError(f"root device hint {name!r} is not an integer: {expr!r}") from exc
                if number <= 0:
                    raise StepError(f"root device hint {name!r} must be a positive integer: {expr!r}")
            parsed[name] = str(expr).strip() if op else f"== {values[0]}"
        else:
            if not isinstance(expr, str):
                raise StepError(f"root device hint {name!r} must be a string, got {expr!r}")
            if name == "name" and not _split(expr, name)[0] and not expr.startswith("/dev/"):
                expr = "/dev/" + expr
            parsed[name] = _normalize_str(expr, name)
    return parsed


def _matches(disk: dict, parsed: dict) -> bool:
    for name, want in parsed.items():
        value = disk.get(name)
        if value is None or value == "":
            return False
        kind = HINT_TYPES[name]
        if kind is bool:
            if bool(value) != want:
                return False
            continue
        try:
            if kind is int:
                value = str(int(value) // GIB)  # whole GiB, as lsblk-based hints; a str for <or>
            else:
                value = quote(str(value).strip().lower())
            if not specs_matcher.match(value, want):
                return False
        except (ValueError, TypeError):
            return False
    return True


def find_disks(disks: list[dict], hints: dict | None) -> list[dict]:
    """Every disk (in inventory order) that satisfies all the hints."""
    parsed = parse_hints(hints)
    return [d for d in disks if isinstance(d, dict) and d.get("name") and _matches(d, parsed)]


def select_root_device(disks: list[dict], hints: dict | None = None) -> dict:
    """The disk the hints name (first match), or the smallest disk of at least 4 GiB."""
    usable = [d for d in disks or [] if isinstance(d, dict) and d.get("name")]
    if hints:
        found = find_disks(usable, hints)
        if not found:
            names = ", ".join(d["name"] for d in usable) or "none"
            raise StepError(f"no disk matches the root device hints {hints}; disks: {names}")
        return found[0]
    big = [d for d in usable if isinstance(d.get("size"), int) and d["size"] >= MIN_ROOT_BYTES]
    if not big:
        raise StepError(
            "no disk of at least 4 GiB found for the root device; disks: "
            + (", ".join(f"{d['name']} ({d.get('size')} B)" for d in usable) or "none")
        )
    return min(big, key=lambda d: (d["size"], d["name"]))
