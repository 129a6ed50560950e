"""The GPU acceptance gate's checks, on the fixture trees' inventories (NVML through its stand-in)."""

from __future__ import annotations

import copy
import functools
import os
import shutil

import pytest

from agent.common import gpu_gate
from agent.inventory import nvml
from agent.inventory.base import Root
from agent.inventory.collect import collect
from tests.unit.inventory.test_gpu_health import FakeNvml

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")
XIDS = [48, 63, 64, 74, 79, 92, 94, 95, 119, 120, 140]
DEGRADED, XID_13_ONLY = "0000:ba:00.0", "0000:5c:00.0"


@functools.cache
def _collected(tree: str) -> dict:
    return collect(os.path.join(FIXTURES, tree), use_nvml=False)


def inventory(tree: str) -> dict:
    """A private copy of the fixture tree's inventory."""
    return copy.deepcopy(_collected(tree))


def healthy_h100() -> dict:
    """hgx-h100 with GPU 6's link repaired and its kernel log free of Xids."""
    inv = inventory("hgx-h100")
    for gpu in inv["gpus"]:
        gpu["health"]["xid_errors"] = []
        if gpu["pci_address"] == DEGRADED:
            gpu["pcie"].update(current_width=16, degraded=False)
    return inv


def with_nvml(inv: dict, fake: FakeNvml) -> dict:
    """NVML's answers (for GPU 0000:18:00.0) added to the inventory, as the agent's collector adds them."""
    nvml.enrich(inv["gpus"], Root("/"), nvml=fake)
    return inv


def checks(findings: list[dict]) -> list[tuple[str, str | None]]:
    return [(f["check"], f["pci_address"]) for f in findings]


def test_the_h100_fixture_fails_on_its_degraded_link_and_fatal_xids_only() -> None:
    inv = inventory("hgx-h100")
    findings = gpu_gate.check_gpus(inv, gpu_gate.expectation_from_inventory(inv), XIDS)
    assert checks(findings) == [("pcie_link", DEGRADED), ("xid", DEGRADED)]
    assert "x8 at 32.0 GT/s PCIe, expected x16" in findings[0]["message"]
    assert findings[1]["message"].startswith("Xid 48, 63, 79 ")  # GPU 3's Xid 13 is not in the list
    assert gpu_gate.describe(findings).startswith(f"GPU {DEGRADED} (serial unknown): pcie_link: ")


def test_a_healthy_node_passes_against_its_own_baseline() -> None:
    inv = healthy_h100()
    assert gpu_gate.check_gpus(inv, gpu_gate.expectation_from_inventory(inv), XIDS) == []
    h200 = inventory("h200-vm")  # captured on a real H200
    assert gpu_gate.check_gpus(h200, gpu_gate.expectation_from_inventory(h200), XIDS) == []


def test_xid_list_is_configurable() -> None:
    inv = healthy_h100()
    expected = gpu_gate.expectation_from_inventory(inv)
    found = checks(gpu_gate.check_gpus(inventory("hgx-h100"), expected, [13]))
    assert ("xid", XID_13_ONLY) in found and ("xid", DEGRADED) not in found


def test_missing_and_new_gpus() -> None:
    inv = healthy_h100()
    expected = gpu_gate.expectation_from_inventory(inv)
    gone = inv["gpus"].pop(2)
    moved = copy.deepcopy(inv["gpus"][0])
    moved["pci_address"] = "0000:f0:00.0"
    inv["gpus"].append(moved)
    assert checks(gpu_gate.check_gpus(inv, expected, XIDS)) == [
        ("missing", gone["pci_address"]),
        ("new", "0000:f0:00.0"),
    ]


def test_a_replaced_gpu_in_the_same_slot_is_new() -> None:
    inv = inventory("mi300x")
    expected = gpu_gate.expectation_from_inventory(inv)
    inv["gpus"][0]["serial"] = "692325999999"
    found = [f for f in gpu_gate.check_gpus(inv, expected, XIDS) if f["check"] == "new"]
    assert found == [
        {
            "check": "new",
            "pci_address": inv["gpus"][0]["pci_address"],
            "serial": "692325999999",
            "message": "GPU serial 692325999999 replaced the expected 692325000001",
        }
    ]


def test_count_sku_memory_and_numa_against_the_expectation() -> None:
    inv = inventory("mi300x")
    expected = gpu_gate.expectation_from_inventory(inv)
    first = expected["gpus"][inv["gpus"][0]["pci_address"]]
    first.update(memory_bytes=first["memory_bytes"] * 2, numa_node=1)
    found = gpu_gate.check_gpus(inv, {**expected, "sku": "MI325X_OAM_256GB", "gpus": None, "count": 9}, XIDS)
    assert ("count", None) in checks(found)
    assert sum(1 for f in found if f["check"] == "sku") == 8
    found = checks(gpu_gate.check_gpus(inv, expected, XIDS))
    address = inv["gpus"][0]["pci_address"]
    assert ("memory", address) in found and ("numa", address) in found


def test_uncorrectable_amd_ras_errors_fail() -> None:
    found = gpu_gate.check_gpus(inventory("mi300x"), None, XIDS)
    assert found == [
        {
            "check": "ecc",
            "pci_address": "0000:43:00.0",
            "serial": "692325000003",
            "message": "1 uncorrectable RAS error(s) in block umc",
        }
    ]  # GPU 5's correctable xgmi_wafl errors do not


def test_lost_xgmi_link_and_nvswitch() -> None:
    inv = inventory("mi300x")
    expected = gpu_gate.expectation_from_inventory(inv)
    inv["gpus"][1]["health"]["xgmi_links"].pop()
    assert ("xgmi", inv["gpus"][1]["pci_address"]) in checks(gpu_gate.check_gpus(inv, expected, XIDS))
    h100 = healthy_h100()
    expected = gpu_gate.expectation_from_inventory(h100)
    h100["nvswitches"].pop()
    assert checks(gpu_gate.check_gpus(h100, expected, XIDS)) == [("nvswitch", "0000:cc:00.0")]


class EccNvml(FakeNvml):
    """The stand-in with one uncorrectable ECC error since the driver loaded, no remap pending."""

    def nvmlDeviceGetTotalEccErrors(self, handle, error_type, counter_type):
        return 1 if (error_type, counter_type) == (1, 0) else 0

    def nvmlDeviceGetRemappedRows(self, handle):
        return (0, 0, 0, 0)


def test_nvidia_ecc_row_remap_and_nvlinks_through_nvml() -> None:
    base = with_nvml(healthy_h100(), EccNvml(links=18))
    base["gpus"][0]["health"]["nvlinks"][17]["active"] = True
    expected = gpu_gate.expectation_from_inventory(base)
    assert expected["gpus"]["0000:18:00.0"]["nvlinks"] == 18
    assert expected["gpus"]["0000:18:00.0"]["serial"] == "1654024075039"
    ecc = gpu_gate.check_gpus(with_nvml(healthy_h100(), EccNvml(links=18)), expected, XIDS)
    assert checks(ecc) == [("nvlink", "0000:18:00.0"), ("ecc", "0000:18:00.0")]  # link 17 is down now
    assert ecc[1]["serial"] == "1654024075039"
    assert ecc[1]["message"] == "1 uncorrectable ECC error(s) since the driver loaded"
    remap = gpu_gate.check_gpus(with_nvml(healthy_h100(), FakeNvml()), None, XIDS)
    assert checks(remap) == [("row_remap", "0000:18:00.0")]
    assert remap[0]["message"] == "row remapping is pending (reset the GPU)"


@pytest.mark.parametrize("speed", ["16.0 GT/s PCIe", "2.5 GT/s PCIe"])
def test_a_slower_link_at_full_width_is_degraded(speed) -> None:
    inv = healthy_h100()
    expected = gpu_gate.expectation_from_inventory(inv)
    inv["gpus"][4]["pcie"]["current_speed"] = speed
    assert checks(gpu_gate.check_gpus(inv, expected, XIDS)) == [("pcie_link", inv["gpus"][4]["pci_address"])]


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link (the copy is only pruned, never written), or copy across filesystems."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def test_xids_of_a_gpu_no_longer_found_still_fail(tmp_path) -> None:
    """GPU 6 fell off the bus (its Xid 79): its PCI function is gone from the tree, its Xids stay."""
    tree = str(tmp_path / "hgx-h100")
    shutil.copytree(os.path.join(FIXTURES, "hgx-h100"), tree, symlinks=True, copy_function=_link_or_copy)
    device = os.path.realpath(os.path.join(tree, "sys/bus/pci/devices", DEGRADED))
    shutil.rmtree(device)
    for link in ("sys/bus/pci/devices", "sys/bus/pci/drivers/nvidia", "sys/kernel/iommu_groups/70/devices"):
        os.unlink(os.path.join(tree, link, DEGRADED))
    inv = collect(tree, use_nvml=False)
    assert DEGRADED not in [g["pci_address"] for g in inv["gpus"]]
    findings = gpu_gate.check_gpus(inv, gpu_gate.expectation_from_inventory(healthy_h100()), XIDS)
    assert checks(findings) == [("missing", DEGRADED), ("xid", DEGRADED)]
    assert findings[1]["message"].startswith("Xid 48, 63, 79 in the kernel log since the last boot (no GPU")
    assert checks(gpu_gate.check_gpus(inv, None, XIDS)) == [("xid", DEGRADED)]  # no baseline: still caught


class SlowLinkNvml(FakeNvml):
    """The stand-in whose NVLinks all run at half speed (NVLink field 164: MB/s per link)."""

    def nvmlDeviceGetFieldValues(self, handle, fields):
        (value,) = super().nvmlDeviceGetFieldValues(handle, fields)
        if fields[0][0] == 164:
            value.value.uiVal //= 2
        return [value]


def test_a_slower_nvlink_fails_and_gpus_without_nvml_are_named_unchecked() -> None:
    expected = gpu_gate.expectation_from_inventory(with_nvml(healthy_h100(), EccNvml()))
    assert expected["gpus"]["0000:18:00.0"]["nvlink_speed_mb_s"] == 26562
    slow = with_nvml(healthy_h100(), SlowLinkNvml())
    found = [f for f in gpu_gate.check_gpus(slow, expected, XIDS) if f["check"] == "nvlink"]
    assert [f["message"] for f in found] == ["an NVLink link runs at 13281 MB/s, expected 26562"]
    unchecked = gpu_gate.unchecked(slow)
    assert len(unchecked) == 7 and not any("0000:18:00.0" in u for u in unchecked)  # only GPU 0 had NVML
    assert unchecked[0] == (
        "GPU 0000:2a:00.0: ECC, row remapping and NVLink not checked (NVML not available)"
    )
    assert gpu_gate.unchecked(inventory("mi300x")) == []  # amdgpu's RAS needs no NVML
