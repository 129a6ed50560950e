"""Load the inventory JSON Schemas (etc/kiln/*.schema.json) and validate documents against them.

Validation is compiled once per format. Where the schema uses only the keywords _Compiler knows,
a valid document is accepted by the yes/no function it generates (under 1 ms for an 8-GPU server,
against ~3 ms for fastjsonschema's code and 60-300 ms for jsonschema's walk); else, when
fastjsonschema is installed and the schema uses only keywords that mean the same in every draft it
knows, by fastjsonschema's compiled check. Only a document the quick check rejects goes through
jsonschema, which is authoritative and names every problem by its JSON path.
"""

from __future__ import annotations

import functools
import json
import os
import re
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


#: Keywords that only annotate: they never make a document invalid.
_ANNOTATIONS = frozenset({"$schema", "$comment", "title", "description", "default", "examples"})
#: Keywords _Compiler turns into Python; a schema using any other is left to fastjsonschema.
_COMPILED_KEYWORDS = _ANNOTATIONS | {
    "$ref", "type", "enum", "const", "properties", "required", "additionalProperties", "items",
    "minItems", "maxItems", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum",
}  # fmt: skip
#: Each JSON type's test, on exact classes: a bool is no integer (as in jsonschema), and a subclass
#: (an OrderedDict, an IntEnum) fails the test, so that jsonschema judges the document.
_TYPE_TESTS = {
    "object": "type({v}) is dict",
    "array": "type({v}) is list",
    "string": "type({v}) is str",
    "integer": "type({v}) is int",
    "number": "(type({v}) is int or type({v}) is float)",
    "boolean": "({v} is True or {v} is False)",
    "null": "{v} is None",
}
#: The JSON types each keyword applies to (it is ignored for values of other types).
_KEYWORD_TYPES = {
    "properties": {"object"}, "required": {"object"}, "additionalProperties": {"object"},
    "items": {"array"}, "minItems": {"array"}, "maxItems": {"array"},
    "pattern": {"string"}, "minLength": {"string"}, "maxLength": {"string"},
    "minimum": {"integer", "number"}, "maximum": {"integer", "number"},
    "exclusiveMinimum": {"integer", "number"}, "exclusiveMaximum": {"integer", "number"},
}  # fmt: skip
_GUARDS = {"object": "object", "array": "array", "string": "string", "integer": "number", "number": "number"}
_JSON_CLASSES = frozenset({dict, list, str, int, float, bool, type(None)})
_ENUM_CLASSES = frozenset({str, int, bool, type(None)})
_DEFS_REF = "#/$defs/"


class _Unsupported(Exception):
    """The schema uses something _Compiler does not translate."""


class _Compiler:
    """Translate a schema into one Python function that says whether a document is valid.

    It is what jsonschema (Draft 2020-12) decides, for the keywords in _COMPILED_KEYWORDS and
    "#/$defs/..." references; where the two could differ (a float that is an integer, a class
    that only derives from dict, list, str or int) it answers False and jsonschema judges. No
    messages and no paths: ~5x quicker than fastjsonschema's code on an 8-GPU server's inventory.
    """

    def __init__(self, root: dict) -> None:
        self.root = root
        self.consts: dict[str, object] = {"_MISSING": object(), "_JSON_CLASSES": _JSON_CLASSES}
        self.defs: dict[str, str] = {}
        self.sources: list[str] = []
        self.names = 0

    def compile(self) -> Callable[[object], bool]:
        """The function: True when the document is valid, False when it is not or may not be."""
        self.function("_root", self.root, root=True)
        namespace = dict(self.consts)
        exec("\n".join(self.sources), namespace)  # noqa: S102 - source generated from our own schema
        return namespace["_root"]

    def _name(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def const(self, value: object) -> str:
        """The name under which the generated code sees ``value``."""
        name = self._name("_c")
        self.consts[name] = value
        return name

    def function(self, name: str, schema: object, root: bool = False) -> None:
        """Generate ``def name(v)``: whether ``v`` is valid against ``schema``."""
        body: list[str] = []
        self.emit(schema, "v", body, 1, root=root)
        self.sources.append(f"def {name}(v):\n" + "".join(line + "\n" for line in body) + "    return True\n")

    def ref(self, ref: object) -> str:
        """The function checking the "#/$defs/..." schema ``ref`` names (generated once)."""
        defs = self.root.get("$defs")
        if not isinstance(ref, str) or not ref.startswith(_DEFS_REF) or not isinstance(defs, dict):
            raise _Unsupported(ref)
        name = ref[len(_DEFS_REF) :]
        if name not in defs or any(c in name for c in "/~%"):
            raise _Unsupported(ref)
        if name not in self.defs:
            self.defs[name] = self._name("_def")
            self.function(self.defs[name], defs[name])
        return self.defs[name]

    def emit(self, schema: object, v: str, out: list[str], depth: int, root: bool = False) -> None:
        """Append to ``out`` the lines (at ``depth``) that return False when ``v`` breaks ``schema``."""
        pad = "    " * depth
        if schema is True:
            return
        if schema is False:
            out.append(f"{pad}return False")
            return
        if not isinstance(schema, dict):
            raise _Unsupported(schema)
        keywords = set(schema) - ({"$defs", "$id"} if root else set())
        if not keywords <= _COMPILED_KEYWORDS:
            raise _Unsupported(sorted(keywords - _COMPILED_KEYWORDS))
        types = schema.get("type")
        if types is not None:
            allowed = [types] if isinstance(types, str) else types
            if not isinstance(allowed, list) or any(t not in _TYPE_TESTS for t in allowed):
                raise _Unsupported(types)
            if not allowed:
                out.append(f"{pad}return False")
                return
            test = " or ".join(_TYPE_TESTS[t].format(v=v) for t in dict.fromkeys(allowed))
            out.append(f"{pad}if not ({test}): return False")
            kinds = {_GUARDS.get(t, t) for t in allowed}
        else:
            kinds = None
            if any(k in _KEYWORD_TYPES for k in schema):
                out.append(f"{pad}if type({v}) not in _JSON_CLASSES: return False")
        for keyword in ("enum", "const"):
            if keyword in schema:
                values = schema[keyword] if keyword == "enum" else [schema[keyword]]
                if not isinstance(values, list) or any(type(x) not in _ENUM_CLASSES for x in values):
                    raise _Unsupported(values)
                pairs = self.const(frozenset((type(x), x) for x in values))
                classes = self.const(frozenset(type(x) for x in values))
                out.append(
                    f"{pad}if type({v}) not in {classes} or (type({v}), {v}) not in {pairs}: return False"
                )
        if "$ref" in schema:
            out.append(f"{pad}if not {self.ref(schema['$ref'])}({v}): return False")
        for kind, emit in (
            ("object", self._object),
            ("array", self._array),
            ("string", self._string),
            ("number", self._number),
        ):
            if not any(_GUARDS[t] == kind for k in schema for t in _KEYWORD_TYPES.get(k, ())):
                continue
            if kinds is not None and kind not in kinds:
                continue  # the type check above already refused every value this keyword applies to
            lines: list[str] = []
            guarded = kinds is None or kinds != {kind}
            emit(schema, v, lines, depth + 1 if guarded else depth)
            if lines and guarded:
                out.append(f"{pad}if {_TYPE_TESTS[kind].format(v=v)}:")
            out.extend(lines)

    def _object(self, schema: dict, v: str, out: list[str], depth: int) -> None:
        pad = "    " * depth
        props = schema.get("properties", {})
        required = schema.get("required", [])
        extra = schema.get("additionalProperties", True)
        if not isinstance(props, dict) or not isinstance(required, list):
            raise _Unsupported(schema)
        if required:
            out.append(f"{pad}if not {v}.keys() >= {self.const(frozenset(required))}: return False")
        names = self.const(frozenset(props))
        if extra is False:
            out.append(f"{pad}if not {v}.keys() <= {names}: return False")
        for key, sub in props.items():
            child = self._name("v")
            lines: list[str] = []
            if key in required:
                self.emit(sub, child, lines, depth)
                if lines:
                    out.append(f"{pad}{child} = {v}[{key!r}]")
                    out.extend(lines)
            else:
                self.emit(sub, child, lines, depth + 1)
                if lines:
                    out.append(f"{pad}{child} = {v}.get({key!r}, _MISSING)")
                    out.append(f"{pad}if {child} is not _MISSING:")
                    out.extend(lines)
        if extra is not True and extra is not False:
            key, child, lines = self._name("k"), self._name("v"), []
            self.emit(extra, child, lines, depth + 2)
            if lines:
                out.append(f"{pad}for {key}, {child} in {v}.items():")
                out.append(f"{pad}    if {key} not in {names}:")
                out.extend(lines)

    def _length(self, schema: dict, v: str, out: list[str], pad: str, low: str, high: str) -> None:
        for keyword, op in ((low, "<"), (high, ">")):
            if keyword in schema:
                out.append(f"{pad}if len({v}) {op} {self._count(schema[keyword])}: return False")

    def _array(self, schema: dict, v: str, out: list[str], depth: int) -> None:
        pad = "    " * depth
        self._length(schema, v, out, pad, "minItems", "maxItems")
        items = schema.get("items", True)
        if isinstance(items, list):
            raise _Unsupported(items)  # draft 7's tuple form; 2020-12 says prefixItems
        child, lines = self._name("v"), []
        self.emit(items, child, lines, depth + 1)
        if lines:
            out.append(f"{pad}for {child} in {v}:")
            out.extend(lines)

    def _string(self, schema: dict, v: str, out: list[str], depth: int) -> None:
        pad = "    " * depth
        self._length(schema, v, out, pad, "minLength", "maxLength")
        if "pattern" in schema:
            if not isinstance(schema["pattern"], str):
                raise _Unsupported(schema["pattern"])
            search = self.const(re.compile(schema["pattern"]).search)  # jsonschema: re.search
            out.append(f"{pad}if {search}({v}) is None: return False")

    def _number(self, schema: dict, v: str, out: list[str], depth: int) -> None:
        pad = "    " * depth
        for keyword, op in (
            ("minimum", "<"),
            ("maximum", ">"),
            ("exclusiveMinimum", "<="),
            ("exclusiveMaximum", ">="),
        ):
            if keyword in schema:
                limit = schema[keyword]
                if type(limit) not in (int, float):
                    raise _Unsupported(limit)
                out.append(f"{pad}if {v} {op} {self.const(limit)}: return False")

    @staticmethod
    def _count(value: object) -> int:
        if type(value) is not int or value < 0:
            raise _Unsupported(value)
        return value


@functools.cache
def _accepts(fmt: str) -> Callable[[object], bool] | None:
    """A quick yes/no of ``fmt``'s schema whose yes jsonschema would give too; None where none is made."""
    schema = load_schema(fmt)
    if not any(not r.startswith("#") for r in _refs(schema)):
        try:
            return _Compiler(schema).compile()
        except _Unsupported:
            pass
    fast = _fastjsonschema_check(fmt)
    if fast is None:
        return None

    def accepts(doc: object) -> bool:
        try:
            fast(doc)
        except Exception:  # noqa: BLE001 - any failure of the fast check: let jsonschema judge and explain
            return False
        return True

    return accepts


@functools.cache
def _fast_check(fmt: str) -> Callable[[object], object] | None:
    """The quick check of ``fmt``'s schema, raising when it rejects a document; None if there is none."""
    accepts = _accepts(fmt)
    if accepts is None:
        return None

    def check(doc: object) -> object:
        if not accepts(doc):
            raise ValueError(f"the document does not match the {fmt} schema")
        return doc

    return check


@functools.cache
def _fastjsonschema_check(fmt: str) -> Callable[[object], object] | None:
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
    _accepts(fmt)


def validate_inventory(doc: object, fmt: str = "json") -> list[str]:
    """Validate ``doc`` against ``fmt``'s schema; one message per problem, each naming its JSON path."""
    accepts = _accepts(fmt)
    if accepts is not None and accepts(doc):
        return []
    errors = sorted(
        _validator(fmt).iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    return [f"{e.json_path}: {_short(e)}" for e in errors]


def _short(error: jsonschema.ValidationError) -> str:
    """Shorten a message that would print a whole sub-document."""
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."
