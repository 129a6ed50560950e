"""The fleet table's cells, from inventories of the fixture trees and from odd data."""

from __future__ import annotations

import os

import pytest

from agent.demo import fleet
from agent.inventory.collect import collect

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")


def _inventory(tree: str) -> dict:
    return collect(os.path.join(FIXTURES, tree), use_nvml=False)


def test_hgx_row() -> None:
    row = fleet.summarise("hgx", "enroll", _inventory("hgx-h100"))
    assert row.gpus == "H100 SXM5 80GB x 8"
    assert row.gpu_numa == "4+4"
    assert row.gpu_links == "7 x16 ok, 1 degraded"
    assert row.cpus == "224 (2 sockets)"
    assert row.memory == "2 TiB"
    assert row.nics == "9 x 400G, SR-IOV 8"
    assert row.disks == "10, 33 TB"


def test_mi300x_row() -> None:
    row = fleet.summarise("mi", "available", _inventory("mi300x"))
    assert (row.gpus, row.gpu_numa, row.gpu_links) == ("Instinct MI300X 192GB x 8", "4+4", "x16 ok")
    assert row.nics == "8 x 400G, SR-IOV 8"
    assert row.disks == "6, 17 TB"


def test_vm_row_has_no_gpus_and_unknown_nic_speed() -> None:
    row = fleet.summarise("vm", "enroll", _inventory("vm"))
    assert (row.gpus, row.gpu_numa, row.gpu_links) == ("-", "-", "-")
    assert row.cpus == "4 (1 socket)"
    assert row.memory == "8 GiB"
    assert row.nics == "1 x ?"
    assert row.disks == "2, 64 GB"


def test_missing_inventory_gives_dashes() -> None:
    row = fleet.summarise("n", "enroll", None)
    assert row.cells() == ("n", "enroll", "-", "-", "-", "-", "-", "-", "-")


@pytest.mark.parametrize(
    "inventory",
    [
        {"cpu": "garbage", "memory": 7, "gpus": "x", "nics": [None, 3], "disks": {"a": 1}},
        {"gpus": [{"numa_node": "zero", "pcie": "wide"}], "nics": [{"pci_address": "x", "speed_mbps": -1}]},
        {"disks": [{"size": None}, {"size": -5}], "memory": {"physical_mb": "lots", "total_bytes": None}},
    ],
)
def test_odd_data_never_raises(inventory: dict) -> None:
    row = fleet.summarise("odd", "enroll", inventory)
    assert row.node == "odd"
    assert len(fleet.render([row]).splitlines()) == 3


def test_unknown_numa_and_mixed_models() -> None:
    gpus = [
        {"name": "A", "numa_node": 0, "pcie": {"current_width": 16}},
        {"name": "A", "numa_node": -1, "pcie": {"current_width": 8}},
        {"name": "B", "numa_node": 1, "pcie": {}},
    ]
    model, numa, links = fleet.gpu_cells({"gpus": gpus})
    assert model == "A x 2, B x 1"
    assert numa == "1+1+1?"
    assert links == "1 x16 ok, 1 x8 ok, 1 unknown"


def test_render_aligns_columns() -> None:
    rows = [fleet.FleetRow("a", "enroll"), fleet.FleetRow("longer-name", "available")]
    lines = fleet.render(rows).splitlines()
    assert lines[0].startswith("node         state")
    assert lines[3].startswith("longer-name  available")


@pytest.mark.parametrize(
    ("n", "text"),
    [(None, "-"), (0, "-"), (512, "512 B"), (8 * 1024**3, "8 GiB"), (int(1.5 * 1024**4), "1.5 TiB")],
)
def test_human_bytes(n, text) -> None:
    assert fleet.human_bytes(n) == text
