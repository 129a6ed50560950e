"""Traits and properties derived from real fixture inventories and from edited copies of them."""

from __future__ import annotations

import copy
import json
import os

import pytest

from agent.conductor import traits
from agent.inventory.collect import collect

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")


def _inventory(name: str) -> dict:
    return json.loads(json.dumps(collect(os.path.join(FIXTURES, name), use_nvml=False)))


@pytest.fixture(scope="module")
def hgx() -> dict:
    """The hgx-h100 fixture's inventory."""
    return _inventory("hgx-h100")


def test_hgx_h100_traits(hgx) -> None:
    assert traits.derive_traits(hgx) == [
        "CUSTOM_BOOT_UEFI",
        "CUSTOM_GPU_COUNT_8",
        "CUSTOM_GPU_H100_SXM5_80GB",
        "CUSTOM_GPU_LINK_DEGRADED",  # 0000:ba:00.0 runs x8 of x16
        "CUSTOM_GPU_NVIDIA",
        "CUSTOM_NIC_400G",
        "CUSTOM_NIC_SRIOV",
        "CUSTOM_NVSWITCH",
    ]


def test_hgx_h100_properties(hgx) -> None:
    assert traits.derive_properties(hgx) == {
        "cpus": 224,
        "cpu_arch": "x86_64",
        "memory_mb": 2097152,
        "local_gb": 893,
        "capabilities": "boot_mode:uefi",
    }


def test_mi300x_is_amd() -> None:
    found = traits.derive_traits(_inventory("mi300x"))
    assert "CUSTOM_GPU_AMD" in found
    assert "CUSTOM_GPU_NVIDIA" not in found
    assert any(t.startswith("CUSTOM_GPU_MI300X") for t in found), found


def test_vm_without_gpus_has_no_gpu_traits() -> None:
    found = traits.derive_traits(_inventory("vm"))
    assert not [t for t in found if t.startswith("CUSTOM_GPU_")]
    assert "CUSTOM_NVSWITCH" not in found


def test_memory_falls_back_to_total_bytes(hgx) -> None:
    inv = copy.deepcopy(hgx)
    inv["memory"]["physical_mb"] = None
    assert traits.derive_properties(inv)["memory_mb"] == 2163540955136 // 2**20


def test_root_disk_is_the_smallest_of_at_least_4_gib(hgx) -> None:
    inv = copy.deepcopy(hgx)
    inv["disks"].append(dict(inv["disks"][0], name="/dev/sdz", size=2 * 2**30))
    inv["disks"].append(dict(inv["disks"][0], name="/dev/sdy", size=500 * 2**30))
    assert traits.root_disk(inv)["name"] == "/dev/sdy"
    assert traits.derive_properties(inv)["local_gb"] == 499
    inv["disks"] = []
    assert "local_gb" not in traits.derive_properties(inv)


def test_garbled_host_data_never_raises(hgx) -> None:
    inv = copy.deepcopy(hgx)
    inv["gpus"][0]["vendor_id"] = "garbage"
    inv["gpus"][1]["pcie"] = None
    inv["gpus"][2]["sku"] = {"trait": 17}
    inv["nics"][0]["speed_mbps"] = -1
    inv["cpu"] = None
    inv["disks"] = [{"size": None}, "junk"]
    found = traits.derive_traits(inv)
    assert "CUSTOM_GPU_COUNT_8" in found
    assert traits.derive_properties(inv) == {"memory_mb": 2097152, "capabilities": "boot_mode:uefi"}
    assert traits.derive_traits({}) == []
    assert traits.derive_properties({}) == {}


@pytest.mark.parametrize(
    ("speed", "trait"),
    [
        (400000, "CUSTOM_NIC_400G"),
        (25000, "CUSTOM_NIC_25G"),
        (2500, "CUSTOM_NIC_2_5G"),
        (100, "CUSTOM_NIC_100M"),
    ],
)
def test_nic_speed_trait(speed, trait) -> None:
    assert traits.nic_speed_trait(speed) == trait


def test_merge_keeps_operator_traits() -> None:
    current = [
        "CUSTOM_GPU_COUNT_8",
        "CUSTOM_GPU_H100_SXM5_80GB",
        "CUSTOM_RACK_7",
        "HW_CPU_X86_AVX2",
        "CUSTOM_GPU_X1",
    ]
    merged = traits.merge_traits(current, ["CUSTOM_GPU_COUNT_4"], previously_set=["CUSTOM_GPU_X1"])
    assert merged == ["CUSTOM_GPU_COUNT_4", "CUSTOM_RACK_7", "HW_CPU_X86_AVX2"]


def test_every_catalogue_sku_trait_is_managed() -> None:
    skus = traits.sku_traits()
    assert "CUSTOM_GPU_H100_SXM5_80GB" in skus
    assert all(traits.is_managed(t) for t in skus)
    assert not traits.is_managed("CUSTOM_GPU_SOMETHING_ELSE")


def test_merge_capabilities_replaces_only_boot_mode() -> None:
    assert traits.merge_capabilities("boot_mode:bios,secure_boot:true", "boot_mode:uefi") == (
        "boot_mode:uefi,secure_boot:true"
    )
    assert traits.merge_capabilities(None, "boot_mode:bios") == "boot_mode:bios"
