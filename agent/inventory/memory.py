"""Memory: the kernel's usable total and the installed DIMMs from the SMBIOS table."""

from __future__ import annotations

import re

from agent.inventory import smbios
from agent.inventory.base import Root
from agent.inventory.model import Memory


def _mem_total(root: Root) -> int | None:
    """Read MemTotal from /proc/meminfo, in bytes."""
    text = root.read("/proc/meminfo")
    if text is None:
        return None
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    if match is None:
        root.note("/proc/meminfo", "garbled: no MemTotal line")
        return None
    return int(match.group(1)) * 1024


def read_memory(root: Root) -> Memory:
    """Read total memory and the populated DIMMs; physical_mb is their sum (None without SMBIOS)."""
    structures = smbios.read_structures(root)
    dimms = smbios.memory_devices(structures) if structures is not None else []
    sizes = [d["size_mb"] for d in dimms if d["size_mb"] is not None]
    if structures is not None and not sizes:
        root.note(f"{smbios.TABLES}/DMI", "no populated memory device (type 17) with a known size")
    return {"total_bytes": _mem_total(root), "physical_mb": sum(sizes) if sizes else None, "dimms": dimms}
