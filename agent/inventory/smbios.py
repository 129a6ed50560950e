"""A small SMBIOS (DMTF DSP0134) table parser: structures, their strings, memory devices.

The kernel exports the raw table at /sys/firmware/dmi/tables/DMI and the entry
point beside it.  Every field is read only when the structure is long enough to
hold it, so old SMBIOS versions and truncated tables never raise.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from agent.inventory.base import Root
from agent.inventory.model import Dimm

TABLES = "/sys/firmware/dmi/tables"
END_OF_TABLE = 127
MEMORY_DEVICE = 17

MEMORY_TYPES = {
    0x01: "Other",
    0x02: "Unknown",
    0x03: "DRAM",
    0x04: "EDRAM",
    0x05: "VRAM",
    0x06: "SRAM",
    0x07: "RAM",
    0x08: "ROM",
    0x09: "Flash",
    0x0A: "EEPROM",
    0x0B: "FEPROM",
    0x0C: "EPROM",
    0x0D: "CDRAM",
    0x0E: "3DRAM",
    0x0F: "SDRAM",
    0x10: "SGRAM",
    0x11: "RDRAM",
    0x12: "DDR",
    0x13: "DDR2",
    0x14: "DDR2 FB-DIMM",
    0x18: "DDR3",
    0x19: "FBD2",
    0x1A: "DDR4",
    0x1B: "LPDDR",
    0x1C: "LPDDR2",
    0x1D: "LPDDR3",
    0x1E: "LPDDR4",
    0x1F: "Logical non-volatile device",
    0x20: "HBM",
    0x21: "HBM2",
    0x22: "DDR5",
    0x23: "LPDDR5",
    0x24: "HBM3",
}


class Structure(NamedTuple):
    type: int
    handle: int
    data: bytes  # the formatted area, header included
    strings: list[str]

    def byte(self, offset: int) -> int | None:
        """Return the BYTE at ``offset``, or None when the structure is too short."""
        return self.data[offset] if offset < len(self.data) else None

    def word(self, offset: int) -> int | None:
        """Return the little-endian WORD at ``offset``, or None when absent."""
        return struct.unpack_from("<H", self.data, offset)[0] if offset + 2 <= len(self.data) else None

    def dword(self, offset: int) -> int | None:
        """Return the little-endian DWORD at ``offset``, or None when absent."""
        return struct.unpack_from("<I", self.data, offset)[0] if offset + 4 <= len(self.data) else None

    def string(self, offset: int) -> str | None:
        """Return the string a BYTE index at ``offset`` names (1-based; 0 = none), stripped."""
        index = self.byte(offset)
        if not index or index > len(self.strings):
            return None
        return self.strings[index - 1].strip() or None


def parse_structures(table: bytes) -> tuple[list[Structure], str | None]:
    """Split a raw SMBIOS table into structures; the second item says where it was cut short."""
    structures: list[Structure] = []
    pos = 0
    while pos + 4 <= len(table):
        kind, length, handle = struct.unpack_from("<BBH", table, pos)
        if length < 4:
            return structures, f"structure at offset {pos} has invalid length {length}"
        end = pos + length
        if end > len(table):
            return structures, f"structure type {kind} at offset {pos} runs past the end of the table"
        terminator = table.find(b"\x00\x00", end)
        if terminator < 0:
            return structures, f"structure type {kind} at offset {pos} has an unterminated string set"
        raw = table[end:terminator]
        strings = [s.decode("latin-1") for s in raw.split(b"\x00")] if raw else []
        structures.append(Structure(kind, handle, table[pos:end], strings))
        pos = terminator + 2
        if kind == END_OF_TABLE:
            break
    return structures, None


def parse_entry_point(data: bytes) -> dict | None:
    """Decode a 32-bit (_SM_) or 64-bit (_SM3_) entry point: version and table size."""
    if data.startswith(b"_SM3_") and len(data) >= 0x10:
        (max_size,) = struct.unpack_from("<I", data, 0x0C)
        return {"version": (data[7], data[8], data[9]), "table_length": None, "table_max": max_size}
    if data.startswith(b"_SM_") and len(data) >= 0x1E:
        (length,) = struct.unpack_from("<H", data, 0x16)
        return {"version": (data[6], data[7], 0), "table_length": length, "table_max": length}
    return None


def read_structures(root: Root) -> list[Structure] | None:
    """Read and parse the SMBIOS table; None (and a recorded problem) when it is unusable."""
    table = root.read_bytes(f"{TABLES}/DMI")
    if table is None:
        return None
    entry = root.read_bytes(f"{TABLES}/smbios_entry_point", optional=True)
    if entry is not None:
        info = parse_entry_point(entry)
        if info is None:
            root.note(f"{TABLES}/smbios_entry_point", "garbled: no _SM_ or _SM3_ anchor")
        elif info["table_length"] is not None and len(table) < info["table_length"]:
            root.note(
                f"{TABLES}/DMI", f"truncated: {len(table)} bytes, the entry point says {info['table_length']}"
            )
    structures, problem = parse_structures(table)
    if problem:
        root.note(f"{TABLES}/DMI", f"truncated: {problem}")
    return structures


def _size_mb(dev: Structure) -> int | None:
    """Decode a memory device's size in MB; 0 = empty slot, None = unknown."""
    size = dev.word(0x0C)
    if size is None or size == 0xFFFF:
        return None
    if size == 0x7FFF:
        extended = dev.dword(0x1C)
        return extended & 0x7FFFFFFF if extended is not None else None
    if size & 0x8000:  # granularity is kilobytes
        return (size & 0x7FFF) // 1024
    return size


def _speed(dev: Structure, offset: int, extended_offset: int) -> int | None:
    """Decode a speed WORD in MT/s; 0xFFFF defers to the DWORD extended field (SMBIOS 3.3)."""
    speed = dev.word(offset)
    if speed == 0xFFFF:
        speed = dev.dword(extended_offset)
        speed = speed & 0x7FFFFFFF if speed is not None else None
    return speed or None


def memory_devices(structures: list[Structure]) -> list[Dimm]:
    """Return the populated memory devices (type 17) as DIMM records."""
    dimms: list[Dimm] = []
    for dev in structures:
        if dev.type != MEMORY_DEVICE or dev.word(0x0C) in (None, 0):
            continue
        kind = dev.byte(0x12)
        dimms.append(
            {
                "locator": dev.string(0x10),
                "size_mb": _size_mb(dev),
                "type": MEMORY_TYPES.get(kind) if kind is not None else None,
                "speed_mts": _speed(dev, 0x15, 0x54) or _speed(dev, 0x20, 0x58),
                "manufacturer": dev.string(0x17),
                "serial": dev.string(0x18),
                "part_number": dev.string(0x1A),
            }
        )
    return dimms
