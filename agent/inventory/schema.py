"""Load the inventory JSON Schemas (etc/kiln/*.schema.json) and validate documents against them.

Validation is compiled once per format. When fastjsonschema is installed and the schema uses only
keywords that mean the same in every draft it knows, a valid document is accepted by its compiled
check alone (a few ms for an 8-GPU server, against 60-300 ms for jsonschema's walk); only a
document the fast check rejects goes through jsonschema, which is authoritative and names every
problem by its JSON path.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable

import jsonschema
from referencing import Registry, Resource

try:  # optional: the conductor wants it, kiln-inventory on a node does fine without it
    import fastjsonschema
except ImportError:  # pragma: no cover - exercised where fastjsonschema is absent
    fastjsonschema = None

#: Schema file of each output format of ``kiln-inventory``.
SCHEMA_FILES = {"json": "inventory.schema.json", "ironic": "ironic-inventory.schema.json"}

_HERE = os.path.dirname(os.path.abspath(__file__))


def schema_dir() -> str:
    """Return the directory holding the schemas: the source tree's etc/kiln, else the installed one."""
    candidates = [
        os.path.join(_HERE, "..", "..", "etc", "kiln"),
        os.path.join(sys.prefix, "etc", "kiln"),
        "/etc/kiln",
    ]
    for path in candidates:
        if os.path.isfile(os.path.join(path, SCHEMA_FILES["json"])):
            return os.path.abspath(path)
    raise FileNotFoundError(f"inventory schemas not found; looked in: {', '.join(candidates)}")


@functools.cache
def load_schema(fmt: str = "json") -> dict:
    """Return the parsed JSON Schema of an output format ('json' or 'ironic')."""
    if fmt not in SCHEMA_FILES:
        raise ValueError(f"unknown inventory format {fmt!r}: expected one of {sorted(SCHEMA_FILES)}")
    with open(os.path.join(schema_dir(), SCHEMA_FILES[fmt]), encoding="utf-8") as f:
        return json.load(f)


@functools.cache
def _validator(fmt: str) -> jsonschema.Draft202012Validator:
    """Build a validator whose registry resolves references between the two schemas."""
    resources = [
        (load_schema(name)["$id"], Resource.from_contents(load_schema(name))) for name in SCHEMA_FILES
    ]
    registry = Registry().with_resources(resources)
    schema = load_schema(fmt)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


#: Keywords whose meaning is the same in draft 7 (fastjsonschema's newest) and 2020-12; a schema
#: using any other keyword (prefixItems, unevaluated*, $dynamicRef, ...) is validated by jsonschema.
_PORTABLE_KEYWORDS = frozenset(
    {
        "$schema", "$id", "$ref", "$defs", "$comment", "title", "description", "default", "examples",
        "type", "enum", "const", "properties", "additionalProperties", "required", "items", "pattern",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
        "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "multipleOf",
        "anyOf", "allOf", "oneOf", "not",
    }
)  # fmt: skip
#: Keywords whose value maps names to subschemas (the names are not keywords).
_SCHEMA_MAPS = frozenset({"properties", "$defs"})
#: Keywords whose value is a subschema or a list of subschemas.
_SUBSCHEMAS = frozenset({"additionalProperties", "items", "anyOf", "allOf", "oneOf", "not"})


def _keywords(schema: object) -> set[str]:
    """Every keyword used anywhere in ``schema``."""
    found: set[str] = set()
    if not isinstance(schema, dict):
        return found
    for key, value in schema.items():
        found.add(key)
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            for sub in value.values():
                found |= _keywords(sub)
        elif key in _SUBSCHEMAS:
            for sub in value if isinstance(value, list) else [value]:
                found |= _keywords(sub)
    return found


def _refs(schema: object) -> set[str]:
    """Every $ref value in ``schema``."""
    if isinstance(schema, dict):
        found = {schema["$ref"]} if isinstance(schema.get("$ref"), str) else set()
        for value in schema.values():
            found |= _refs(value)
        return found
    if isinstance(schema, list):
        return set().union(*(_refs(v) for v in schema)) if schema else set()
    return set()


@functools.cache
def _fast_check(fmt: str) -> Callable[[object], object] | None:
    """fastjsonschema's compiled check of ``fmt``'s schema; None where it cannot stand in for jsonschema."""
    if fastjsonschema is None:
        return None
    schema = dict(load_schema(fmt))
    if not _keywords(schema) <= _PORTABLE_KEYWORDS or any(not r.startswith("#") for r in _refs(schema)):
        return None
    # Our schemas declare 2020-12; with the keywords above draft 7 means the same, and the $id (a
    # URN) is dropped so that "#/$defs/..." resolves inside this document.
    schema.pop("$id", None)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(schema, use_formats=False)


def prepare(fmt: str = "json") -> None:
    """Compile ``fmt``'s validators now (a long-running service calls this once at start)."""
    _validator(fmt)
    _fast_check(fmt)


def validate_inventory(doc: object, fmt: str = "json") -> list[str]:
    """Validate ``doc`` against ``fmt``'s schema; one message per problem, each naming its JSON path."""
    fast = _fast_check(fmt)
    if fast is not None:
        try:
            fast(doc)
        except Exception:  # noqa: BLE001 - any failure of the fast check: let jsonschema judge and explain
            pass
        else:
            return []
    errors = sorted(
        _validator(fmt).iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    return [f"{e.json_path}: {_short(e)}" for e in errors]


def _short(error: jsonschema.ValidationError) -> str:
    """Shorten a message that would print a whole sub-document."""
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."
