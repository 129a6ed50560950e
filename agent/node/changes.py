"""What changed between two inventories: devices added, removed, or with changed fields."""

from __future__ import annotations

from typing import Any

# Device lists compared, and the field that names a device within its list.
DEVICE_KEYS = {"disks": "kernel_name", "nics": "name", "gpus": "pci_address", "nvswitches": "address"}
# Fields that move without any hardware change.
IGNORED_FIELDS = {"nics": {"ipv4_addresses", "ipv6_addresses"}}


def _flatten(record: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(record, dict):
        return {prefix: record}
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def _index(records: Any, key: str) -> dict[str, dict]:
    """Map device name to record; records without a usable name are skipped."""
    if not isinstance(records, list):
        return {}
    out: dict[str, dict] = {}
    for rec in records:
        if isinstance(rec, dict) and isinstance(rec.get(key), str):
            out[rec[key]] = rec
    return out


def field_changes(old: dict, new: dict, ignored: set[str] = frozenset()) -> dict[str, dict]:
    """Return {"field.sub": {"old": a, "new": b}} for every differing leaf field."""
    a, b = _flatten(old), _flatten(new)
    out = {}
    for name in sorted(a.keys() | b.keys()):
        if name.split(".", 1)[0] in ignored:
            continue
        if a.get(name) != b.get(name):
            out[name] = {"old": a.get(name), "new": b.get(name)}
    return out


def diff_inventory(old: dict | None, new: dict) -> dict:
    """Compare two inventories device by device.

    Returns ``{"added": {list: [records]}, "removed": {list: [records]},
    "changed": {list: {device: {field: {"old", "new"}}}}}``; lists without a
    difference are left out, so no change at all is three empty dicts.
    """
    result: dict[str, dict] = {"added": {}, "removed": {}, "changed": {}}
    old = old if isinstance(old, dict) else {}
    for group, key in DEVICE_KEYS.items():
        before, after = _index(old.get(group), key), _index(new.get(group), key)
        added = [after[n] for n in sorted(after.keys() - before.keys())]
        removed = [before[n] for n in sorted(before.keys() - after.keys())]
        changed = {}
        for name in sorted(before.keys() & after.keys()):
            fields = field_changes(before[name], after[name], IGNORED_FIELDS.get(group, set()))
            if fields:
                changed[name] = fields
        if added:
            result["added"][group] = added
        if removed:
            result["removed"][group] = removed
        if changed:
            result["changed"][group] = changed
    return result


def has_changes(diff: dict) -> bool:
    """Say whether a ``diff_inventory`` result holds any change."""
    return any(diff.get(kind) for kind in ("added", "removed", "changed"))


def summary(diff: dict) -> str:
    """One line for logs and STATUS=, e.g. "added nics: eth2; changed gpus: 0000:18:00.0"."""
    parts = []
    for kind in ("added", "removed", "changed"):
        for group, items in sorted(diff.get(kind, {}).items()):
            key = DEVICE_KEYS.get(group, "name")
            names = sorted(items) if isinstance(items, dict) else [str(i.get(key)) for i in items]
            parts.append(f"{kind} {group}: {', '.join(names)}")
    return "; ".join(parts) or "no change"
