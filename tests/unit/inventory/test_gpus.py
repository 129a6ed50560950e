"""GPUs, accelerators and NVSwitches from small trees and from the fixture trees."""

from __future__ import annotations

import os

import pytest

from agent.inventory import gpus
from agent.inventory.base import Root
from tests.unit.inventory.test_pci import add_function, switch_tree
from tests.unit.inventory.treebuild import Tree

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")
GIB = 1 << 30

NVIDIA_INFO = """Model: \t\t NVIDIA H100 80GB HBM3
IRQ:   \t\t 312
GPU UUID: \t GPU-3f0c2a1e-7b4d-4c6e-9a8b-1d2e3f405000
Video BIOS: \t 96.00.74.00.01
Bus Type: \t PCIe
DMA Size: \t 52 bits
Bus Location: \t 0000:18:00.0
Device Minor: \t 0
GPU Excluded:\t No
"""


def fixture_root(name: str) -> Root:
    path = os.path.join(FIXTURES, name)
    if not os.path.isdir(os.path.join(path, "sys")):
        pytest.skip(f"fixture tree {name} not built yet")
    return Root(path)


def test_h100_with_a_bmc_display_and_a_virtual_display(tmp_path):
    tree = Tree(tmp_path)
    switch_tree(tree)
    gpu_dir = "/sys/devices/pci0000:15/0000:15:01.0/0000:16:00.0/0000:17:00.0/0000:18:00.0"
    tree.files(
        gpu_dir,
        subsystem_vendor="0x10de",
        subsystem_device="0x16c1",
        local_cpulist="0-55,112-167",
        current_link_speed="32.0 GT/s PCIe",
        max_link_speed="32.0 GT/s PCIe",
        current_link_width="16",
        max_link_width="16",
    )
    tree.mkdir("/sys/kernel/iommu_groups/41").link(f"{gpu_dir}/iommu_group", "/sys/kernel/iommu_groups/41")
    tree.write("/proc/driver/nvidia/gpus/0000:18:00.0/information", NVIDIA_INFO)
    tree.write("/dev/kmsg", "6,0,0,-;Linux version 6.8.0")  # an NVIDIA GPU's Xids come from the kernel log
    tree.write("/proc/sys/kernel/random/boot_id", "5d1c7a0e-7f3b-4d2a-9c8e-1b2a3c4d5e6f")
    tree.write("/proc/stat", "cpu  1 2 3 4\nbtime 1718000000")
    add_function(tree, "0000:03:00.0", "0x1a03", "0x2000", "0x030000", driver="ast")  # ASPEED BMC display
    add_function(tree, "0000:00:01.0", "0x1234", "0x1111", "0x030000", driver="bochs-drm")  # QEMU std VGA
    root = Root(str(tmp_path))

    found = gpus.read_gpus(root)

    assert [g["pci_address"] for g in found] == ["0000:18:00.0"]
    gpu = found[0]
    assert gpu["name"] == "H100 SXM5 80GB"
    assert gpu["vendor"] == "NVIDIA"
    assert (gpu["vendor_id"], gpu["device_id"], gpu["class_code"]) == ("0x10de", "0x2330", "0x030200")
    assert (gpu["subsystem_vendor_id"], gpu["subsystem_device_id"]) == ("0x10de", "0x16c1")
    assert gpu["sku"]["trait"] == "H100_SXM5_80GB"
    assert gpu["sku"]["memory_gb"] == 80
    assert gpu["sku"]["verified"] is True
    assert gpu["memory_bytes"] is None  # NVIDIA exposes no VRAM size in sysfs; the catalogue is not copied
    assert gpu["numa_node"] == 0
    assert gpu["local_cpulist"] == "0-55,112-167"
    assert gpu["driver"] == "nvidia"
    assert gpu["iommu_group"] == 41
    assert gpu["uuid"] == "GPU-3f0c2a1e-7b4d-4c6e-9a8b-1d2e3f405000"
    assert gpu["vbios_version"] == "96.00.74.00.01"
    assert gpu["pcie"]["degraded"] is False
    assert gpu["pcie_switch"] == "0000:16:00.0"
    assert gpu["mig_mode"] is None and gpu["partition"] is None
    assert set(gpu) == set(gpus.Gpu.__annotations__)
    assert gpu["health"]["xid_errors"] == [] and gpu["health"]["nvml"] is False
    assert root.errors == []


def test_mi300x_memory_partition_and_ids_from_amdgpu(tmp_path):
    tree = Tree(tmp_path)
    add_function(
        tree,
        "0000:03:00.0",
        "0x1002",
        "0x74a1",
        "0x120000",
        driver="amdgpu",
        numa="0",
        mem_info_vram_total="206158430208",
        vbios_version="113-M3000100-102",
        unique_id="9e8f1c2a3b4d5e00",
        serial_number="692325000001",
        current_compute_partition="SPX",
        available_compute_partition="SPX, DPX, QPX, CPX",
        current_memory_partition="NPS1",
        available_memory_partition="NPS1, NPS4",
    )
    root = Root(str(tmp_path))

    (gpu,) = gpus.read_gpus(root)

    assert gpu["name"] == "Instinct MI300X 192GB"
    assert gpu["vendor"] == "AMD"
    assert gpu["memory_bytes"] == 192 * GIB
    assert gpu["vbios_version"] == "113-M3000100-102"
    assert gpu["uuid"] == "9e8f1c2a3b4d5e00"
    assert gpu["serial"] == "692325000001"
    assert gpu["partition"] == {
        "compute": "SPX",
        "available_compute": ["SPX", "DPX", "QPX", "CPX"],
        "memory": "NPS1",
        "available_memory": ["NPS1", "NPS4"],
    }
    assert gpu["sku"]["trait"] == "MI300X_OAM_192GB"


def test_intel_xe_vram_sums_tiles_in_both_layouts(tmp_path):
    tree = Tree(tmp_path)
    path = add_function(tree, "0000:29:00.0", "0x8086", "0x0bd5", "0x038000", driver="xe")
    tree.write(f"{path}/tile0/physical_vram_size_bytes", "0x1000000000")  # 64 GiB, hex
    tree.write(f"{path}/tile1/memory/physical_vram_size_bytes", "68719476736")  # 64 GiB, decimal
    tree.mkdir(f"{path}/tiles_extra")

    (gpu,) = gpus.read_gpus(Root(str(tmp_path)))

    assert gpu["name"] == "Data Center GPU Max 1550"
    assert gpu["memory_bytes"] == 128 * GIB


def test_unknown_id_is_named_from_the_hosts_pci_ids(tmp_path):
    tree = Tree(tmp_path)
    add_function(tree, "0000:41:00.0", "0x10de", "0x1eb8", "0x030200")
    tree.write(
        "/usr/share/hwdata/pci.ids",
        "# test\n10de  NVIDIA Corporation\n\t1eb8  TU104GL [Tesla T4]\n\t\t10de 12a2  T4 16GB\n"
        "10df  Emulex Corporation\n\tabcd  Not an NVIDIA device\n",
    )
    add_function(tree, "0000:42:00.0", "0x10de", "0xabcd", "0x030200")

    t4, unknown = gpus.read_gpus(Root(str(tmp_path)))

    assert (t4["vendor"], t4["name"], t4["sku"]) == ("NVIDIA", "Tesla T4", None)
    assert unknown["name"] == "Unknown device 10de:abcd"  # 10df's abcd must not match
    assert unknown["sku"] is None


def test_unknown_vendor_display_counts_but_a_virtual_function_does_not(tmp_path):
    tree = Tree(tmp_path)
    add_function(tree, "0000:05:00.0", "0x1ed5", "0x0200", "0x030000")  # an unknown vendor's VGA card
    pf = add_function(tree, "0000:06:00.0", "0x1002", "0x74a1", "0x120000")
    vf = add_function(tree, "0000:06:02.0", "0x1002", "0x74b5", "0x120000")
    tree.link(f"{vf}/physfn", pf)
    root = Root(str(tmp_path))

    found = gpus.read_gpus(root)

    assert [g["pci_address"] for g in found] == ["0000:05:00.0", "0000:06:00.0"]
    assert found[0]["name"] == "Unknown device 1ed5:0200"


def test_matrox_and_cirrus_are_not_gpus(tmp_path):
    tree = Tree(tmp_path)
    add_function(tree, "0000:03:00.0", "0x102b", "0x0532", "0x030000", driver="mgag200")
    add_function(tree, "0000:00:02.0", "0x1013", "0x00b8", "0x030000", driver="cirrus")
    add_function(tree, "0000:00:04.0", "0x8086", "0x2922", "0x010601")
    assert gpus.read_gpus(Root(str(tmp_path))) == []


def test_read_nvswitches_with_and_without_a_driver(tmp_path):
    tree = Tree(tmp_path)
    add_function(tree, "0000:c9:00.0", "0x10de", "0x22a3", "0x068000", driver="nvidia-nvswitch", numa="1")
    add_function(tree, "0000:cc:00.0", "0x10de", "0x22a3", "0x068000", numa="1")
    add_function(tree, "0000:18:00.0", "0x10de", "0x2330", "0x030200")
    add_function(tree, "0000:19:00.0", "0x10de", "0x1af1", "0x030200")  # an NVSwitch id with a GPU class: no
    root = Root(str(tmp_path))

    switches = gpus.read_nvswitches(root)

    assert [(s["address"], s["driver"], s["numa_node"]) for s in switches] == [
        ("0000:c9:00.0", "nvidia-nvswitch", 1),
        ("0000:cc:00.0", None, 1),
    ]
    assert [g["pci_address"] for g in gpus.read_gpus(root)] == ["0000:18:00.0", "0000:19:00.0"]


def test_parse_nvidia_information():
    fields = gpus.parse_nvidia_information(NVIDIA_INFO)
    assert fields["Model"] == "NVIDIA H100 80GB HBM3"
    assert fields["Bus Location"] == "0000:18:00.0"
    assert fields["GPU Excluded"] == "No"


# -- fixture trees -----------------------------------------------------------


def test_hgx_h100_fixture():
    root = fixture_root("hgx-h100")
    found = gpus.read_gpus(root, use_nvml=False)

    assert len(found) == 8
    assert {g["name"] for g in found} == {"H100 SXM5 80GB"}
    assert [g["numa_node"] for g in found].count(0) == 4
    assert [g["numa_node"] for g in found].count(1) == 4
    assert [g["pci_address"] for g in found if g["pcie"]["degraded"]] == ["0000:ba:00.0"]
    assert next(g for g in found if g["pci_address"] == "0000:ba:00.0")["pcie"]["current_width"] == 8
    assert "0000:03:00.0" not in {g["pci_address"] for g in found}  # ASPEED
    gpu0 = found[0]
    assert gpu0["pci_address"] == "0000:18:00.0"
    assert gpu0["uuid"] == "GPU-3f0c2a1e-7b4d-4c6e-9a8b-1d2e3f405000"
    assert gpu0["vbios_version"] == "96.00.74.00.01"
    assert gpu0["pcie_switch"] == "0000:16:00.0"
    assert gpu0["local_cpulist"] == "0-55,112-167"
    assert next(g for g in found if g["pci_address"] == "0000:5c:00.0")["local_cpulist"] is None
    assert {g["driver"] for g in found} == {"nvidia"}

    switches = gpus.read_nvswitches(root)
    assert [s["address"] for s in switches] == [
        "0000:c9:00.0",
        "0000:ca:00.0",
        "0000:cb:00.0",
        "0000:cc:00.0",
    ]
    assert [s["driver"] for s in switches] == ["nvidia-nvswitch"] * 3 + [None]


def test_mi300x_fixture():
    root = fixture_root("mi300x")
    found = gpus.read_gpus(root, use_nvml=False)

    assert len(found) == 8
    assert {g["memory_bytes"] for g in found} == {192 * GIB}
    assert {g["partition"]["compute"] for g in found} == {"SPX"}
    assert found[0]["serial"] == "692325000001"
    assert found[7]["serial"] == "692325000008"
    assert found[0]["uuid"] == "9e8f1c2a3b4d5e00"
    assert [g["numa_node"] for g in found] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert "0000:cb:00.0" not in {g["pci_address"] for g in found}  # ASPEED


@pytest.mark.parametrize("tree", ["storage-sas", "vm", "host-kvm"])
def test_fixtures_without_gpus(tree):
    root = fixture_root(tree)
    assert gpus.read_gpus(root, use_nvml=False) == []
    assert gpus.read_nvswitches(root) == []
