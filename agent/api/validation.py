"""Checks of the values clients send: field names per version, types, names, UUIDs, JSON Patch."""

from __future__ import annotations

import re
from typing import Any

import jsonpatch
import jsonpointer
from oslo_utils import strutils, uuidutils

from agent.api import base, errors

_NAME_RE = re.compile(r"^[A-Za-z0-9\-._~]+$")
_GROUP_RE = re.compile(r"^[A-Za-z0-9_\-.]*$")
_TRAIT_RE = re.compile(r"^[A-Z0-9_]+$")
MAX_TRAITS = 50

# Kinds of value: a checker per kind, each raising BadRequest naming the field (JSON: any value,
# checked by the resource itself).
INT, JSON = "integer", "json"
STRING, NAME, UUID, OBJECT, BOOL, GROUP, LIST, MAC = (
    "string",
    "name",
    "uuid",
    "object",
    "bool",
    "group",
    "list",
    "mac",
)


def check_value(what: str, field: str, kind: str, value: Any, nullable: bool = True) -> Any:
    """Return ``value`` checked (and normalised) as ``kind``; BadRequest naming ``what``.``field``."""
    if value is None:
        if nullable:
            return None
        raise errors.HTTPBadRequest(f"{what} field {field} cannot be null.")
    if kind == OBJECT:
        if not isinstance(value, dict):
            raise errors.HTTPBadRequest(f"{what} field {field} must be a JSON object, not {value!r}.")
        return value
    if kind == BOOL:
        if isinstance(value, str):  # Ironic's API takes "true"/"false" (and 1/0, yes/no), as the CLI sends
            try:
                return strutils.bool_from_string(value, strict=True)
            except ValueError:
                pass
        if not isinstance(value, bool):
            raise errors.HTTPBadRequest(f"{what} field {field} must be true or false, not {value!r}.")
        return value
    if kind == INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise errors.HTTPBadRequest(f"{what} field {field} must be an integer, not {value!r}.")
        return value
    if kind == JSON:
        return value
    if kind == LIST:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise errors.HTTPBadRequest(f"{what} field {field} must be a list of strings, not {value!r}.")
        return value
    if not isinstance(value, str):
        raise errors.HTTPBadRequest(f"{what} field {field} must be a string, not {value!r}.")
    if kind == NAME and (not _NAME_RE.match(value) or len(value) > 255):
        raise errors.HTTPBadRequest(
            f"Expected a logical name but received {value!r} for {what} field {field}: use at most 255 of "
            "the characters A-Z a-z 0-9 - . _ ~."
        )
    if kind == UUID:
        if not uuidutils.is_uuid_like(value):
            raise errors.HTTPBadRequest(f"Expected a UUID but received {value!r} for {what} field {field}.")
        return value.lower()
    if kind == GROUP:
        if not _GROUP_RE.match(value) or len(value) > 255:
            raise errors.HTTPBadRequest(
                f"{what} field {field} {value!r} may only use A-Z a-z 0-9 _ - . (at most 255 characters)."
            )
        return value.lower()
    if kind == STRING and len(value) > 65535:
        raise errors.HTTPBadRequest(f"{what} field {field} is too long ({len(value)} characters).")
    return value


def check_fields(
    req: base.ApiRequest, what: str, body: dict, allowed: dict[str, tuple[int, str]], required: tuple = ()
) -> dict:
    """Check a create body: every key known (400), not newer than the version (406), of its kind (400)."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise errors.HTTPBadRequest(
            f"Unknown field(s) in the {what}: {', '.join(unknown)}. Allowed at this API version: "
            f"{', '.join(sorted(k for k, (m, _) in allowed.items() if req.at_least(m)))}."
        )
    too_new = sorted(k for k in body if not req.at_least(allowed[k][0]))
    if too_new:
        raise errors.HTTPNotAcceptable(
            f"Field(s) {', '.join(too_new)} of the {what} need a newer API version than "
            f"1.{req.version[1]}; send a newer X-OpenStack-Ironic-API-Version."
        )
    missing = [k for k in required if body.get(k) in (None, "")]
    if missing:
        raise errors.HTTPBadRequest(f"Missing required field(s) in the {what}: {', '.join(missing)}.")
    return {k: check_value(what.capitalize(), k, allowed[k][1], v) for k, v in body.items()}


def check_traits(traits: Any, where: str) -> list[str]:
    """Return ``traits`` checked: strings of A-Z 0-9 _ (standard or CUSTOM_), at most 50."""
    if not isinstance(traits, list):
        raise errors.HTTPBadRequest(f"{where}: traits must be a list of strings, not {traits!r}.")
    if len(traits) > MAX_TRAITS:
        raise errors.HTTPBadRequest(f"{where}: at most {MAX_TRAITS} traits are allowed, got {len(traits)}.")
    for trait in traits:
        check_trait(trait, where)
    return list(dict.fromkeys(traits))


def check_trait(trait: Any, where: str) -> str:
    """Return ``trait`` checked (A-Z 0-9 _, at most 255 characters)."""
    if not isinstance(trait, str) or not trait or len(trait) > 255 or not _TRAIT_RE.match(trait):
        raise errors.HTTPBadRequest(
            f"{where}: invalid trait {trait!r}: a trait is a standard trait or starts with CUSTOM_, and "
            "uses only A-Z, 0-9 and _ (at most 255 characters)."
        )
    return trait


def patched_fields(req: Any, what: str, doc: dict, patched: dict, writable: dict, fixed=()) -> dict:
    """The writable fields a JSON Patch changed (at the request's version), each checked.

    A removed object field becomes {}; ``fixed`` fields may not be set to null.
    """
    changed: dict[str, Any] = {}
    for field, (minor, kind) in writable.items():
        if field == "uuid" or not req.at_least(minor):
            continue
        new = patched.get(field)
        if new != doc.get(field):
            if kind == OBJECT and new is None:
                new = {}
            changed[field] = check_value(what, field, kind, new, nullable=field not in fixed)
    return changed


def apply_patch(
    req: base.ApiRequest,
    what: str,
    doc: dict,
    patch: Any,
    readonly: set[str],
    mandatory: set[str],
    messages: dict[str, str] | None = None,
) -> dict:
    """Apply a JSON Patch to ``doc`` with Ironic's rules; return the patched document."""
    if not isinstance(patch, list) or not patch:
        raise errors.HTTPBadRequest(
            f"The {what} patch must be a non-empty JSON array of operations (RFC 6902)."
        )
    for index, op in enumerate(patch):
        if not isinstance(op, dict) or not isinstance(op.get("path"), str) or "op" not in op:
            raise errors.HTTPBadRequest(
                f'Patch operation {index} must be an object with "op" and "path": {op!r}.'
            )
        if op["op"] not in ("add", "replace", "remove"):
            raise errors.HTTPBadRequest(
                f"Patch operation {index}: op {op['op']!r} is not supported; use add, replace or remove."
            )
        if op["op"] != "remove" and "value" not in op:
            raise errors.HTTPBadRequest(f"Patch operation {index} ({op['op']} {op['path']}) needs a value.")
        path = op["path"]
        if not path.startswith("/") or path == "/":
            raise errors.HTTPBadRequest(
                f"Patch operation {index}: invalid path {path!r}; paths look like /name."
            )
        root = "/" + path.split("/")[1]
        if messages and root in messages:
            raise errors.HTTPBadRequest(messages[root])
        if root in readonly:
            raise errors.HTTPBadRequest(f"'{root}' is an internal attribute and can not be updated")
        if op["op"] == "remove" and path in mandatory:
            raise errors.HTTPBadRequest(f"'{path}' is a mandatory attribute and can not be removed")
        if op["op"] == "add" and path.count("/") == 1 and path.lstrip("/") not in doc:
            raise errors.HTTPBadRequest(
                f"Adding a new attribute ({path}) to the root of the resource is not allowed; "
                f"the {what} has no field {path.lstrip('/')}."
            )
    try:
        return jsonpatch.apply_patch(doc, patch)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise errors.HTTPBadRequest(f"Cannot apply the {what} patch: {exc}.") from None
