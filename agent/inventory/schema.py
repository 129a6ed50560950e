"""Load the inventory JSON Schemas (etc/kiln/*.schema.json) and validate documents against them."""

from __future__ import annotations

import functools
import json
import os
import sys

import jsonschema
from referencing import Registry, Resource

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


def validate_inventory(doc: object, fmt: str = "json") -> list[str]:
    """Validate ``doc`` against ``fmt``'s schema; one message per problem, each naming its JSON path."""
    errors = sorted(
        _validator(fmt).iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    return [f"{e.json_path}: {_short(e)}" for e in errors]


def _short(error: jsonschema.ValidationError) -> str:
    """Shorten a message that would print a whole sub-document."""
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."
