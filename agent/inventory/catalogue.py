"""Kiln's own PCI-id catalogue: names, kinds and GPU SKU facts, with a pci.ids fallback.

The table ships as ``data/pci_catalogue.json`` (tracked in git, so pbr packages it).
It is loaded once and looked up in O(1). Ids the table does not carry are named from
the host's ``pci.ids`` under the inventory root, read lazily and only as far as needed.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from importlib import resources

from agent.inventory.base import Root

#: Where distributions keep pci.ids, most common first.
PCI_IDS_PATHS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids")

#: Catalogue kinds that are display controllers but never GPUs.
NOT_GPU_KINDS = frozenset({"bmc-display", "virtual-display"})


@dataclass(frozen=True)
class Entry:
    """One catalogue row: what a PCI id is."""

    vendor: str | None
    name: str
    kind: str
    verified: bool
    sku: dict | None


@functools.cache
def load_table() -> dict:
    """The JSON catalogue (vendors, devices, SKUs), loaded once per process."""
    text = resources.files("agent.inventory").joinpath("data/pci_catalogue.json").read_text("utf-8")
    return json.loads(text)


def _key(*ids: int) -> str:
    return ":".join(f"{i:04x}" for i in ids)


def vendor_name(vendor_id: int) -> str | None:
    """Return the catalogue's short vendor name ("NVIDIA"), or None."""
    return load_table()["vendors"].get(f"{vendor_id:04x}")


def lookup(
    vendor_id: int,
    device_id: int,
    subsystem_vendor_id: int | None = None,
    subsystem_device_id: int | None = None,
) -> Entry | None:
    """Return the catalogue entry for a PCI id (a subsystem variant first), or None."""
    table = load_table()
    row = None
    if subsystem_vendor_id is not None and subsystem_device_id is not None:
        row = table["subsystems"].get(_key(vendor_id, device_id, subsystem_vendor_id, subsystem_device_id))
    if row is None:
        row = table["devices"].get(_key(vendor_id, device_id))
    if row is None:
        return None
    sku = dict(row["sku"]) if row.get("sku") else None
    return Entry(vendor_name(vendor_id), row["name"], row["kind"], bool(row.get("verified")), sku)


def kind(vendor_id: int | None, device_id: int | None) -> str | None:
    """Return the catalogue kind ("gpu", "nvswitch", "bmc-display", ...) of a PCI id, or None."""
    if vendor_id is None or device_id is None:
        return None
    row = load_table()["devices"].get(_key(vendor_id, device_id))
    return row["kind"] if row else None


def traits() -> list[str]:
    """Return every SKU trait slug the catalogue can produce, sorted (without the CUSTOM_GPU_ prefix)."""
    table = load_table()
    rows = list(table["devices"].values()) + list(table["subsystems"].values())
    return sorted({row["sku"]["trait"] for row in rows if row.get("sku") and row["sku"].get("trait")})


def pci_ids_name(root: Root, vendor_id: int, device_id: int) -> tuple[str | None, str | None]:
    """Name a PCI id from the host's pci.ids under the root: (vendor, device), either may be None."""
    for rel in PCI_IDS_PATHS:
        path = root.host(rel)
        try:
            stat = os.stat(path)
        except OSError:
            continue
        return _scan_pci_ids(path, stat.st_mtime_ns, vendor_id, device_id)
    return None, None


@functools.lru_cache(maxsize=256)
def _scan_pci_ids(path: str, _mtime: int, vendor_id: int, device_id: int) -> tuple[str | None, str | None]:
    """Scan pci.ids for one vendor and device, stopping at the end of that vendor's block."""
    want_vendor = f"{vendor_id:04x}  "
    want_device = f"\t{device_id:04x}  "
    vendor = None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if vendor is None:
                    if line.startswith(want_vendor):
                        vendor = line[6:].strip()
                    elif line.startswith("C "):  # the class section follows every vendor
                        break
                    continue
                if line.startswith(want_device):
                    return vendor, line[7:].strip()
                if line[:1] not in ("\t", "#", "\n", ""):
                    break  # next vendor: the device is not listed
    except OSError:
        return None, None
    return vendor, None


def short_name(pci_ids_device: str) -> str:
    """Prefer the marketing name in brackets: 'GH100 [H100 SXM5 80GB]' -> 'H100 SXM5 80GB'."""
    start, end = pci_ids_device.rfind("["), pci_ids_device.rfind("]")
    if 0 <= start < end and pci_ids_device[start + 1 : end].strip():
        return pci_ids_device[start + 1 : end].strip()
    return pci_ids_device


def describe(
    root: Root,
    vendor_id: int,
    device_id: int,
    subsystem_vendor_id: int | None = None,
    subsystem_device_id: int | None = None,
) -> Entry:
    """Describe any PCI id: the catalogue, else pci.ids, else 'Unknown device 10de:abcd' (sku None)."""
    entry = lookup(vendor_id, device_id, subsystem_vendor_id, subsystem_device_id)
    if entry is not None:
        return entry
    vendor, device = pci_ids_name(root, vendor_id, device_id)
    vendor = vendor_name(vendor_id) or vendor
    name = short_name(device) if device else f"Unknown device {vendor_id:04x}:{device_id:04x}"
    return Entry(vendor, name, "unknown", False, None)


def peak_tflops(trait: str | None) -> dict[str, float] | None:
    """A SKU's datasheet peak in TFLOPS, dense ({"fp32", "fp16_tensor"}), or None when not carried."""
    if not trait:
        return None
    row = load_table().get("peak_tflops", {}).get(trait)
    return dict(row) if isinstance(row, dict) else None
