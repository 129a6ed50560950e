"""Ironic's target RAID configuration: its JSON schema and the checks Ironic makes beyond it."""

from __future__ import annotations

from typing import Any

import jsonschema

from agent.common import exception

RAID_LEVELS = ("JBOD", "0", "1", "2", "5", "6", "1+0", "5+0", "6+0")
_POSITIVE_INT = {"type": "integer", "minimum": 0, "exclusiveMinimum": True}

#: Ironic's raid_config_schema.json (draft 4: exclusiveMinimum is a boolean there).
SCHEMA: dict[str, Any] = {
    "title": "raid configuration json schema",
    "type": "object",
    "properties": {
        "logical_disks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "raid_level": {"type": "string", "enum": list(RAID_LEVELS)},
                    "size_gb": {"anyOf": [_POSITIVE_INT, {"type": "string", "enum": ["MAX"]}]},
                    "volume_name": {"type": "string"},
                    "is_root_volume": {"type": "boolean"},
                    "share_physical_disks": {"type": "boolean"},
                    "disk_type": {"type": "string", "enum": ["hdd", "ssd"]},
                    "interface_type": {"type": "string", "enum": ["sata", "scsi", "sas"]},
                    "number_of_physical_disks": _POSITIVE_INT,
                    "controller": {"type": "string"},
                    "physical_disks": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["raid_level", "size_gb"],
                "additionalProperties": False,
                "dependencies": {"physical_disks": ["controller"]},
            },
            "minItems": 1,
        }
    },
    "required": ["logical_disks"],
    "additionalProperties": False,
}

_VALIDATOR = jsonschema.Draft4Validator(SCHEMA)


def _path(error: jsonschema.ValidationError) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return text.lstrip(".") or "(top level)"


def validate_configuration(node: str, raid_config: Any) -> None:
    """Raise InvalidParameterValue naming the node and the JSON path of the first problem found."""
    errors = sorted(_VALIDATOR.iter_errors(raid_config), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        raise exception.InvalidParameterValue(
            err=f"Node {node}: invalid target RAID configuration at {_path(first)}: {first.message}."
        )
    roots = [d for d in raid_config["logical_disks"] if d.get("is_root_volume")]
    if len(roots) > 1:
        raise exception.InvalidParameterValue(
            err=f"Node {node}: a RAID configuration cannot have more than one root volume; "
            f"{len(roots)} logical disks have is_root_volume true."
        )


def size_bytes(logical_disk: dict[str, Any], free_bytes: int | None = None) -> int | None:
    """A logical disk's size in bytes (size_gb GiB; MAX: ``free_bytes``, None when unknown)."""
    size = logical_disk.get("size_gb")
    if size == "MAX":
        return free_bytes
    return int(size) * 1024**3
