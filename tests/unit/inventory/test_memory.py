"""read_memory and the SMBIOS parser on constructed tables (and garbage)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.inventory import smbios
from agent.inventory.base import Root
from agent.inventory.memory import read_memory
from tests.unit.inventory.treebuild import Tree, fixture_root

TABLES = "/sys/firmware/dmi/tables"


def structure(kind: int, body: bytes, strings: list[str], handle: int = 0x1100) -> bytes:
    """Encode one SMBIOS structure: header, formatted body, string set."""
    header = struct.pack("<BBH", kind, 4 + len(body), handle)
    tail = b"".join(s.encode() + b"\0" for s in strings) + b"\0" if strings else b"\0\0"
    return header + body + tail


def memory_device(
    size: int,
    kind: int = 0x22,
    speed: int = 4800,
    extended_size: int = 0,
    configured: int = 4400,
    extended_speed: int = 0,
    strings: tuple[str, ...] = (
        "DIMM_A1",
        "P0_Node0_Channel0",
        "Samsung",
        "03A1B2C3",
        "A1",
        "M321R8GA0BB0-CQKZJ",
    ),
    length: int = 0x5C,
) -> bytes:
    """Encode a type 17 structure the way SMBIOS 3.3+ firmware lays it out."""
    body = bytearray(0x5C - 4)

    def put(offset: int, fmt: str, value: int) -> None:
        struct.pack_into(fmt, body, offset - 4, value)

    put(0x0C, "<H", size)
    put(0x0E, "<B", 0x09)  # DIMM
    put(0x10, "<B", 1)  # device locator
    put(0x11, "<B", 2)  # bank locator
    put(0x12, "<B", kind)
    put(0x15, "<H", speed)
    put(0x17, "<B", 3)
    put(0x18, "<B", 4)
    put(0x19, "<B", 5)
    put(0x1A, "<B", 6)
    put(0x1C, "<I", extended_size)
    put(0x20, "<H", configured)
    put(0x54, "<I", extended_speed)
    return structure(17, bytes(body[: length - 4]), list(strings))


END = structure(127, b"", [], handle=0xFEFF)
BIOS = structure(0, bytes(20), ["American Megatrends", "2.1", "03/15/2024"], handle=0)


def _table() -> bytes:
    return b"".join(
        [
            BIOS,
            memory_device(0x7FFF, extended_size=65536),  # 64 GiB DDR5 through Extended Size
            memory_device(
                0, strings=("DIMM_A2", "A", "NO DIMM", "NO DIMM", "NO DIMM", "NO DIMM")
            ),  # empty slot
            memory_device(
                0x7FFF,
                extended_size=32768,
                kind=0x1A,
                speed=3200,
                strings=("DIMM_B1", "B", "Micron", "1234", " ", "36ASF"),
            ),
            memory_device(0x8000 | 2048, kind=0x24, speed=0xFFFF, extended_speed=6400, strings=("HBM0",)),
            memory_device(16384, kind=0x12, length=0x15, strings=("OLD",)),  # SMBIOS 2.1: no speed at all
            END,
        ]
    )


def _host(tmp_path, table: bytes) -> Tree:
    tree = Tree(tmp_path)
    tree.write("/proc/meminfo", "MemTotal:       2113204224 kB\nMemFree:        1024 kB")
    tree.write(f"{TABLES}/DMI", table)
    tree.write(
        f"{TABLES}/smbios_entry_point", b"_SM3_" + bytes([0, 0x18, 3, 6, 0, 1, 0]) + struct.pack("<I", 8192)
    )
    return tree


def test_dimms_from_type_17(tmp_path):
    _host(tmp_path, _table())
    root = Root(str(tmp_path))
    mem = read_memory(root)
    assert mem["total_bytes"] == 2113204224 * 1024
    assert mem["dimms"] == [
        {
            "locator": "DIMM_A1",
            "size_mb": 65536,
            "type": "DDR5",
            "speed_mts": 4800,
            "manufacturer": "Samsung",
            "serial": "03A1B2C3",
            "part_number": "M321R8GA0BB0-CQKZJ",
        },
        {
            "locator": "DIMM_B1",
            "size_mb": 32768,
            "type": "DDR4",
            "speed_mts": 3200,
            "manufacturer": "Micron",
            "serial": "1234",
            "part_number": "36ASF",
        },
        {
            "locator": "HBM0",
            "size_mb": 2,
            "type": "HBM3",
            "speed_mts": 6400,
            "manufacturer": None,
            "serial": None,
            "part_number": None,
        },
        {
            "locator": "OLD",
            "size_mb": 16384,
            "type": "DDR",
            "speed_mts": None,
            "manufacturer": None,
            "serial": None,
            "part_number": None,
        },
    ]
    assert mem["physical_mb"] == 65536 + 32768 + 2 + 16384
    assert root.errors == []


def test_unknown_size_is_kept_but_not_summed(tmp_path):
    _host(tmp_path, memory_device(0xFFFF) + memory_device(8192) + END)
    mem = read_memory(Root(str(tmp_path)))
    assert [d["size_mb"] for d in mem["dimms"]] == [None, 8192]
    assert mem["physical_mb"] == 8192


def test_unreadable_tables(tmp_path):
    Tree(tmp_path).write("/proc/meminfo", "MemTotal: 1024 kB")
    root = Root(str(tmp_path))
    mem = read_memory(root)
    assert mem == {"total_bytes": 1048576, "physical_mb": None, "dimms": []}
    assert [(p.path, p.error) for p in root.errors] == [(f"{TABLES}/DMI", "missing")]


def test_truncated_table_keeps_what_parsed(tmp_path):
    table = _table()
    cut = len(BIOS) + len(memory_device(0x7FFF)) + 10  # inside the empty slot's structure
    _host(tmp_path, table[:cut])
    root = Root(str(tmp_path))
    mem = read_memory(root)
    assert [d["locator"] for d in mem["dimms"]] == ["DIMM_A1"]
    assert mem["physical_mb"] == 65536
    assert [p.path for p in root.errors] == [f"{TABLES}/DMI"]
    assert root.errors[0].error.startswith("truncated:")


def test_every_prefix_of_the_table_parses():
    table = _table()
    for n in range(len(table) + 1):
        structures, _ = smbios.parse_structures(table[:n])
        smbios.memory_devices(structures)


def test_32bit_entry_point_length_is_checked(tmp_path):
    table = memory_device(8192) + END
    tree = _host(tmp_path, table)
    entry = bytearray(0x1F)
    entry[0:4] = b"_SM_"
    entry[6:8] = bytes([2, 8])
    struct.pack_into("<H", entry, 0x16, len(table) + 100)
    tree.write(f"{TABLES}/smbios_entry_point", bytes(entry))
    root = Root(str(tmp_path))
    assert read_memory(root)["physical_mb"] == 8192
    assert [p.path for p in root.errors] == [f"{TABLES}/DMI"]
    assert smbios.parse_entry_point(bytes(entry))["version"] == (2, 8, 0)


def test_no_memory_devices_is_recorded(tmp_path):
    _host(tmp_path, BIOS + END)
    root = Root(str(tmp_path))
    assert read_memory(root)["physical_mb"] is None
    assert [p.path for p in root.errors] == [f"{TABLES}/DMI"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_never_raises(data):
    structures, _ = smbios.parse_structures(data)
    for dimm in smbios.memory_devices(structures):
        assert dimm["size_mb"] is None or dimm["size_mb"] >= 0


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=4, max_value=0x5C), st.binary(min_size=0, max_size=0x60))
def test_short_memory_devices_never_raise(length, body):
    raw = struct.pack("<BBH", 17, length, 1) + body[: length - 4].ljust(length - 4, b"\x01") + b"x\0\0"
    structures, problem = smbios.parse_structures(raw)
    assert problem is None and len(structures) == 1
    smbios.memory_devices(structures)


def test_hgx_h100_fixture():
    root = fixture_root("hgx-h100")
    mem = read_memory(root)
    assert mem["total_bytes"] == 2112832964 * 1024
    assert mem["physical_mb"] == 2097152
    assert len(mem["dimms"]) == 32
    assert mem["dimms"][0] == {
        "locator": "P1-DIMMA1",
        "size_mb": 65536,
        "type": "DDR5",
        "speed_mts": 4800,
        "manufacturer": "Samsung",
        "serial": "3A1B2C00",
        "part_number": "M321R8GA0BB0-CQKZJ",
    }
    assert (mem["dimms"][-1]["locator"], mem["dimms"][-1]["serial"]) == ("P2-DIMMH2", "3A1B2C1F")
    assert root.errors == []


def test_storage_sas_fixture_skips_empty_slots():
    root = fixture_root("storage-sas")
    mem = read_memory(root)
    assert [d["locator"] for d in mem["dimms"]] == [f"DIMM {n}" for n in range(1, 9)]
    assert {(d["size_mb"], d["type"], d["speed_mts"], d["manufacturer"]) for d in mem["dimms"]} == {
        (32768, "DDR4", 3200, "Micron")
    }
    assert mem["physical_mb"] == 262144
    assert mem["total_bytes"] == 263761524 * 1024


def test_vm_fixture():
    mem = read_memory(fixture_root("vm"))
    assert mem["physical_mb"] == 8192 and mem["total_bytes"] == 8141032 * 1024
    assert [(d["locator"], d["type"], d["manufacturer"]) for d in mem["dimms"]] == [("DIMM 0", "RAM", "QEMU")]


def test_host_kvm_capture_without_smbios():
    root = fixture_root("host-kvm")
    mem = read_memory(root)
    assert mem == {"total_bytes": 25276063744, "physical_mb": None, "dimms": []}
    assert [(p.path, p.error) for p in root.errors] == [(f"{TABLES}/DMI", "missing")]
