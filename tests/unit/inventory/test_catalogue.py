"""The PCI-id / SKU catalogue and the pci.ids fallback."""

from __future__ import annotations

import re

import pytest

from agent.inventory import catalogue
from agent.inventory.base import Root
from tests.unit.inventory.treebuild import Tree

KINDS = {"gpu", "accelerator", "nvswitch", "bmc-display", "virtual-display", "nic", "nvme"}
SKU_KEYS = {
    "trait",
    "memory_gb",
    "memory_type",
    "architecture",
    "form_factor",
    "interconnect",
    "partitioning",
    "tdp_w",
}


def test_every_row_is_well_formed():
    table = catalogue.load_table()
    rows = list(table["devices"].items()) + list(table["subsystems"].items())
    assert len(rows) > 60
    for key, row in rows:
        assert re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{4}(:[0-9a-f]{4}:[0-9a-f]{4})?", key), key
        assert row["kind"] in KINDS, key
        assert isinstance(row["verified"], bool), key
        assert row["source"], key
        if row["kind"] in ("gpu", "accelerator"):
            assert SKU_KEYS <= set(row["sku"]), key
            trait = row["sku"]["trait"]
            assert trait is None or re.fullmatch(r"[A-Z0-9_]+", trait), key


@pytest.mark.parametrize(
    ("ids", "name", "trait"),
    [
        ((0x10DE, 0x20B0), "A100 SXM4 40GB", "A100_SXM4_40GB"),
        ((0x10DE, 0x20B2), "A100 SXM4 80GB", "A100_SXM4_80GB"),
        ((0x10DE, 0x20F1), "A100 PCIe 40GB", "A100_PCIE_40GB"),
        ((0x10DE, 0x20B5), "A100 PCIe 80GB", "A100_PCIE_80GB"),
        ((0x10DE, 0x2330), "H100 SXM5 80GB", "H100_SXM5_80GB"),
        ((0x10DE, 0x2331), "H100 PCIe 80GB", "H100_PCIE_80GB"),
        ((0x10DE, 0x2324), "H800 SXM5 80GB", "H800_SXM5_80GB"),
        ((0x10DE, 0x2335), "H200 SXM 141GB", "H200_SXM5_141GB"),
        ((0x10DE, 0x2901), "B200 180GB", "B200_SXM_180GB"),
        ((0x10DE, 0x26B9), "L40S 48GB", "L40S_48GB"),
        ((0x10DE, 0x27B8), "L4 24GB", "L4_24GB"),
        ((0x1002, 0x74A1), "Instinct MI300X 192GB", "MI300X_OAM_192GB"),
        ((0x1002, 0x74A5), "Instinct MI325X 256GB", "MI325X_OAM_256GB"),
        ((0x1002, 0x740F), "Instinct MI210 64GB", "MI210_64GB"),
        ((0x8086, 0x0BDB), "Data Center GPU Max 1100", "MAX_1100_48GB"),
        ((0x1DA3, 0x1060), "Gaudi3 128GB", "GAUDI3_128GB"),
    ],
)
def test_known_skus(ids, name, trait):
    entry = catalogue.lookup(*ids)
    assert entry is not None
    assert entry.name == name
    assert entry.sku["trait"] == trait


def test_h100_facts():
    entry = catalogue.lookup(0x10DE, 0x2330)
    assert entry.vendor == "NVIDIA"
    assert entry.kind == "gpu"
    assert entry.verified is True
    assert entry.sku["memory_gb"] == 80
    assert entry.sku["form_factor"] == "SXM"
    assert entry.sku["interconnect"] == "NVLink 4 900 GB/s"
    assert entry.sku["partitioning"] == {"mig_max_instances": 7}


def test_unverified_entries_say_so():
    assert catalogue.lookup(0x10DE, 0x2321).verified is False  # pci.ids says "H100L 94GB"
    assert catalogue.lookup(0x15B3, 0xA2DC).verified is False


def test_subsystem_variants_pick_the_sku():
    assert catalogue.lookup(0x10DE, 0x25B6, 0x10DE, 0x14A9).sku["trait"] == "A16_16GB"
    assert catalogue.lookup(0x10DE, 0x25B6, 0x10DE, 0x157E).sku["trait"] == "A2_16GB"
    assert (
        catalogue.lookup(0x10DE, 0x25B6, 0x1028, 0x0001).name == "A2 / A16"
    )  # unknown variant: the base row


def test_display_kinds_and_nvswitches():
    assert catalogue.kind(0x1A03, 0x2000) == "bmc-display"
    for device in (0x0522, 0x0532, 0x0533, 0x0534, 0x0536, 0x0538):
        assert catalogue.kind(0x102B, device) == "bmc-display"
    assert catalogue.kind(0x1234, 0x1111) == "virtual-display"
    assert catalogue.kind(0x1013, 0x00B8) == "virtual-display"
    assert catalogue.kind(0x10DE, 0x22A3) == "nvswitch"
    assert catalogue.kind(0x10DE, 0x1AF1) == "nvswitch"
    assert catalogue.kind(0x10DE, 0xFFFF) is None
    assert catalogue.kind(None, 0x2330) is None


def test_the_table_is_loaded_once():
    assert catalogue.load_table() is catalogue.load_table()


def test_traits_are_unique_sorted_slugs():
    traits = catalogue.traits()
    assert traits == sorted(set(traits))
    assert {"H100_SXM5_80GB", "H200_SXM5_141GB", "MI300X_OAM_192GB", "GAUDI3_128GB"} <= set(traits)


def test_describe_falls_back_to_pci_ids_then_unknown(tmp_path):
    tree = Tree(tmp_path)
    tree.write(
        "/usr/share/misc/pci.ids",
        "#\tList of PCI ID's\n1002  Advanced Micro Devices, Inc. [AMD/ATI]\n"
        "\t7448  Navi 31 [Radeon Pro W7900]\n"
        "10de  NVIDIA Corporation\n# a comment inside the vendor\n\t1eb8  TU104GL [Tesla T4]\n"
        "\t2bb5  GB202GL [RTX PRO 6000 Blackwell Server Edition]\n\t9999  Plain Name\n"
        "10df  Emulex Corporation\n\t2bb6  Someone else's device\n"
        "C 03  Display controller\n\t00  VGA compatible controller\n",
    )
    root = Root(str(tmp_path))

    assert catalogue.describe(root, 0x10DE, 0x2BB5).name == "RTX PRO 6000 Blackwell Server Edition"
    assert catalogue.describe(root, 0x10DE, 0x9999).name == "Plain Name"
    assert catalogue.describe(root, 0x1002, 0x7448).vendor == "AMD"  # the catalogue's short vendor name wins
    other = catalogue.describe(root, 0x10DE, 0x2BB6)
    assert (other.name, other.sku, other.kind) == ("Unknown device 10de:2bb6", None, "unknown")
    nobody = catalogue.describe(root, 0xABCD, 0x0001)
    assert (nobody.vendor, nobody.name) == (None, "Unknown device abcd:0001")
    assert root.errors == []


def test_describe_without_any_pci_ids(tmp_path):
    entry = catalogue.describe(Root(str(tmp_path)), 0x10DE, 0x1EB8)
    assert (entry.vendor, entry.name, entry.sku) == ("NVIDIA", "Unknown device 10de:1eb8", None)


def test_short_name():
    assert catalogue.short_name("GH100 [H100 SXM5 80GB]") == "H100 SXM5 80GB"
    assert catalogue.short_name("Plain Name") == "Plain Name"
    assert catalogue.short_name("Odd []") == "Odd []"


def test_peak_figures_name_catalogue_skus() -> None:
    peaks = {k: v for k, v in catalogue.load_table()["peak_tflops"].items() if not k.startswith("_")}
    assert set(peaks) <= set(catalogue.traits())
    assert all(0 < row["fp32"] < row["fp16_tensor"] for row in peaks.values())
    assert catalogue.peak_tflops("H100_SXM5_80GB") == {"fp32": 67.0, "fp16_tensor": 989.5}
    assert catalogue.peak_tflops("H200_SXM5_141GB")["fp32"] == 67.0
    assert catalogue.peak_tflops("NO_SUCH_GPU") is None and catalogue.peak_tflops(None) is None
