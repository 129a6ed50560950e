"""The inventory JSON Schemas: real collect() output validates, broken documents are named by path."""

from __future__ import annotations

import copy
import os
import types
import typing

import pytest

from agent.inventory import model
from agent.inventory.collect import collect
from agent.inventory.ironic import to_ironic
from agent.inventory.schema import load_schema, validate_inventory
from tests.unit.inventory.test_ironic import _inventory

SYSFS = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")
TREES = sorted(
    name for name in os.listdir(SYSFS) if os.path.isdir(os.path.join(SYSFS, name, "sys"))
)  # every captured or constructed tree


@pytest.mark.parametrize("tree", TREES)
def test_every_fixture_tree_validates_in_both_formats(tree):
    inv = collect(os.path.join(SYSFS, tree), use_nvml=False)
    assert validate_inventory(inv, "json") == []
    assert validate_inventory(to_ironic(inv), "ironic") == []


def test_this_host_validates_in_both_formats():
    inv = collect("/", use_nvml=False)
    assert validate_inventory(inv, "json") == []
    assert validate_inventory(to_ironic(inv), "ironic") == []


def _sample() -> dict:
    """A hand-built inventory (no fixture tree needed), valid before each test breaks it."""
    inv = _inventory()
    assert validate_inventory(inv, "json") == []
    return inv


def test_wrong_type_is_named_by_path():
    inv = _sample()
    inv["disks"][1]["size"] = "3.84 TB"
    assert validate_inventory(inv, "json") == ["$.disks[1].size: '3.84 TB' is not of type 'integer', 'null'"]


def test_missing_and_unknown_keys_are_named_by_path():
    inv = _sample()
    del inv["cpu"]["count"]
    inv["disks"][3]["colour"] = "green"
    errors = validate_inventory(inv, "json")
    assert "$.cpu: 'count' is a required property" in errors
    assert any(e.startswith("$.disks[3]: Additional properties are not allowed ('colour'") for e in errors)
    assert len(errors) == 2


def test_bad_pci_address_and_ironic_types_are_named():
    inv = _sample()
    inv["pci_devices"][0]["address"] = "18:00.0"
    errors = validate_inventory(inv, "json")
    assert len(errors) == 1 and errors[0].startswith("$.pci_devices[0].address: '18:00.0' does not match")
    doc = to_ironic(_sample())
    doc["cpu"]["frequency"] = 3800.0
    doc["interfaces"][0]["has_carrier"] = "yes"
    assert validate_inventory(doc, "ironic") == [
        "$.cpu.frequency: 3800.0 is not of type 'string'",
        "$.interfaces[0].has_carrier: 'yes' is not of type 'boolean'",
    ]


def test_kiln_block_is_checked_against_the_json_schema():
    doc = to_ironic(_sample())
    doc["kiln"]["nics"][0]["mtu"] = -1
    assert validate_inventory(doc, "ironic") == ["$.kiln.nics[0].mtu: -1 is less than the minimum of 0"]


def test_not_an_object_at_all():
    assert validate_inventory([], "json") == ["$: [] is not of type 'object'"]


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown inventory format 'yaml'"):
        validate_inventory({}, "yaml")


def _allows_null(schema: dict) -> bool:
    if "anyOf" in schema:
        return any(_allows_null(s) for s in schema["anyOf"])
    t = schema.get("type")
    return t == "null" or (isinstance(t, list) and "null" in t)


def _nullable(tp) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


@pytest.mark.parametrize(
    "cls",
    [
        model.Firmware,
        model.System,
        model.NumaNode,
        model.Cpu,
        model.Dimm,
        model.Memory,
        model.Disk,
        model.Nic,
        model.PcieLink,
        model.Gpu,
        model.PciDevice,
        model.Errors,
        model.Inventory,
    ],
    ids=lambda c: c.__name__,
)
def test_schema_agrees_with_model(cls):
    schema = load_schema("json")
    node = schema if cls is model.Inventory else schema["$defs"][cls.__name__]
    hints = typing.get_type_hints(cls)
    assert set(node["properties"]) == set(hints)
    assert set(node["required"]) == set(cls.__required_keys__)  # health, kernel_log: not in older agents'
    assert node["additionalProperties"] is False
    for field, tp in hints.items():
        assert _allows_null(node["properties"][field]) == _nullable(tp), f"{cls.__name__}.{field}"


# --- the compiled fast check stands in for jsonschema only where they agree -------------------------


def test_fast_check_compiled_for_the_json_schema_only():
    from agent.inventory import schema

    if schema.fastjsonschema is None:
        pytest.skip("fastjsonschema is not installed")
    assert schema._fast_check("json") is not None
    assert schema._fast_check("ironic") is None  # prefixItems: 2020-12 only, jsonschema judges


def _mutations(doc: object, path: tuple = ()):
    """(path, replacement) pairs: every scalar and container swapped for values of other types."""
    replacements = ("text", 7, -3, 2.5, None, True, [], {}, "0000:zz:00.0", 10**20)
    if isinstance(doc, dict):
        for key, value in doc.items():
            for new in replacements:
                yield (*path, key), new
            yield from _mutations(value, (*path, key))
    elif isinstance(doc, list) and doc:
        yield from _mutations(doc[0], (*path, 0))


def _replaced(doc: dict, path: tuple, value: object) -> dict:
    out = copy.deepcopy(doc)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def test_fast_check_and_jsonschema_agree_on_every_mutation():
    from agent.inventory import schema

    fast = schema._fast_check("json")
    if fast is None:
        pytest.skip("fastjsonschema is not installed")
    slow = schema._validator("json")
    inv = _sample()  # hand-built and small: jsonschema takes a while on each of the mutated copies
    checked = disagreements = 0
    for path, value in _mutations(inv):
        doc = _replaced(inv, path, value)
        try:
            fast(doc)
            fast_ok = True
        except Exception:  # noqa: BLE001
            fast_ok = False
        if fast_ok != slow.is_valid(doc):
            disagreements += 1
        checked += 1
    assert checked >= 1000
    assert disagreements == 0


def test_messages_still_name_the_path_when_the_fast_check_rejects():
    inv = _sample()
    inv["cpu"]["count"] = True
    inv["disks"][0]["name"] = 5
    assert validate_inventory(inv, "json") == [
        "$.cpu.count: True is not of type 'integer', 'null'",
        "$.disks[0].name: 5 is not of type 'string'",
    ]


def test_the_json_schema_is_compiled_by_kiln_itself():
    from agent.inventory import schema

    assert schema._Compiler(load_schema("json")).compile()(_sample()) is True
    with pytest.raises(schema._Unsupported):
        schema._Compiler(load_schema("ironic")).compile()  # prefixItems


class _Dict(dict):
    pass


class _Int(int):
    pass


def test_the_quick_check_never_accepts_what_jsonschema_refuses():
    """Values where Python and JSON Schema differ: the quick check may say no, never a wrong yes."""
    from agent.inventory import schema

    accepts = schema._accepts("json")
    slow = schema._validator("json")
    inv = _sample()
    tricky = (
        3.0, 0.0, -0.0, False, True, _Int(4), _Int(-1), _Dict(), _Dict(name="x"), (), ("a",),
        "0x10de\n", "0000:00:01.0\n", "aa:bb\n", "", "UEFI", 1, 0, float("nan"), -(10**30),
    )  # fmt: skip
    checked = 0
    for path in dict.fromkeys(path for path, _value in _mutations(inv)):
        for value in tricky:
            doc = _replaced(inv, path, value)
            if accepts(doc):
                assert slow.is_valid(doc), (path, value)
            checked += 1
    assert checked >= 500


_OBJECT = {
    "type": "object",
    "required": ["a"],
    "properties": {"a": {"type": "boolean"}, "b": {"type": "null"}},
    "additionalProperties": False,
}
_ARRAY = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2}
_EXTRA = {"properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"}}


@pytest.mark.parametrize(
    ("sub", "good", "bad"),
    [
        ({"type": "integer", "minimum": 2}, [2, 10**20], [1, True, 2.5, "3", None]),
        ({"type": ["integer", "null"], "maximum": 3}, [None, 3], [4, False]),
        ({"exclusiveMinimum": 0, "exclusiveMaximum": 1.5}, [0.5, 1, "x", None, [], {}], [0, 1.5]),
        ({"type": "number"}, [1, 1.5], [True, "1", None]),
        ({"type": "string", "minLength": 1, "maxLength": 2}, ["a", "ab"], ["", "abc", 1]),
        ({"pattern": "^a+$"}, ["aa", 5, None], ["ab", "ba"]),
        ({"enum": ["a", 1, None, False]}, ["a", 1, None, False], ["b", True, 0, 2]),
        ({"const": 0}, [0], [False, 1, "0"]),
        (_ARRAY, [["a"]], [[], [1], ["a"] * 3, "a"]),
        ({"items": False}, [[], "x", {}], [[1]]),
        (
            _OBJECT,
            [{"a": True}, {"a": False, "b": None}],
            [{}, {"a": 1}, {"a": True, "b": 0}, {"a": True, "c": 1}],
        ),
        (_EXTRA, [{"a": "x", "b": 1}, {}, 5], [{"a": 1}, {"b": "x"}]),
        ({"$ref": "#/$defs/Pair"}, [[1, 2]], [[1], [1, "x"]]),
        ({"$ref": "#/$defs/Tree"}, [{"kids": [{"kids": []}]}], [{"kids": [{"kids": [1]}]}]),
        ({"type": []}, [], [None, 1, "a"]),
        (True, [1, None], []),
        (False, [], [1, None]),
    ],
)
def test_each_compiled_keyword_means_what_jsonschema_says(sub, good, bad):
    import jsonschema

    from agent.inventory import schema

    defs = {
        "Pair": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        "Tree": {
            "type": "object",
            "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}},
        },
    }
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": defs,
        "properties": {"x": sub},
    }
    accepts = schema._Compiler(root).compile()
    slow = jsonschema.Draft202012Validator(root)
    for value in good:
        assert slow.is_valid({"x": value}), value
        assert accepts({"x": value}) is True, value
    for value in bad:
        assert not slow.is_valid({"x": value}), value
        assert accepts({"x": value}) is False, value


@pytest.mark.parametrize(
    "sub",
    [
        {"anyOf": [{"type": "string"}]},
        {"uniqueItems": True},
        {"patternProperties": {"a": {}}},
        {"items": [{"type": "string"}]},
        {"$ref": "urn:other#/$defs/X"},
        {"$ref": "#/$defs/Missing"},
        {"enum": [1.5]},
        {"minItems": -1},
        {"$id": "urn:nested"},
    ],
)
def test_what_the_compiler_does_not_know_is_left_to_the_others(sub):
    from agent.inventory import schema

    with pytest.raises(schema._Unsupported):
        schema._Compiler({"$defs": {}, "properties": {"x": sub}}).compile()
