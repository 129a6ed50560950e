"""The inventory of a real NVIDIA H200 machine, captured there, against what nvidia-smi and the live run said.

tests/fixtures/sysfs/h200-vm was captured with kiln-capture-sysfs on a lent machine with one H200
(tools/gpu-host-check.sh); tests/fixtures/gpu-host/ holds that run's live inventory (NVML on)
and nvidia-smi's output.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from agent.inventory.collect import collect

HERE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
TREE = os.path.join(HERE, "sysfs", "h200-vm")
LIVE = os.path.join(HERE, "gpu-host")
NVML_ONLY = {"memory_bytes", "serial", "mig_mode"}


@pytest.fixture(scope="module")
def captured() -> dict:
    return collect(TREE, use_nvml=False)


@pytest.fixture(scope="module")
def live() -> dict:
    with open(os.path.join(LIVE, "inventory.json")) as f:
        return json.load(f)


def _smi(field: str) -> str:
    """A value from nvidia-smi -q's text, e.g. 'Product Name'."""
    with open(os.path.join(LIVE, "nvidia-smi-q.txt")) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == field:
                return value.strip()
    raise AssertionError(f"{field} not in nvidia-smi -q output")


def test_gpu_matches_nvidia_smi(captured) -> None:
    (gpu,) = captured["gpus"]
    assert gpu["pci_address"] == "0000:00:06.0"
    assert (gpu["vendor_id"], gpu["device_id"], gpu["class_code"]) == ("0x10de", "0x2335", "0x030200")
    assert gpu["name"] == "H200 SXM 141GB" and gpu["driver"] == "nvidia"
    assert gpu["uuid"] == _smi("GPU UUID")
    assert gpu["vbios_version"].lower() == _smi("VBIOS Version").lower()
    # nvidia-smi: "PCIe Generation Current 5", "Link Width Current 16x".
    assert gpu["pcie"]["current_speed"] == "32.0 GT/s PCIe" and gpu["pcie"]["current_width"] == 16
    assert gpu["pcie"]["degraded"] is False
    assert gpu["sku"]["memory_gb"] == 141
    assert captured["nvswitches"] == []


def test_nvml_enrichment_was_live(live) -> None:
    (gpu,) = live["gpus"]
    total_mib = int(re.match(r"(\d+) MiB", _smi("Total")).group(1))
    assert gpu["memory_bytes"] == total_mib * 1024 * 1024
    assert gpu["serial"] == _smi("Serial Number")
    assert gpu["mig_mode"] == "disabled"


def test_captured_tree_reproduces_the_live_inventory(captured, live) -> None:
    """Everything but what only NVML knows comes out the same from the capture as on the machine."""
    for key in ("system", "cpu", "memory", "disks", "nics", "nvswitches", "pci_devices", "numa_topology"):
        assert captured[key] == live[key], key
    (cap_gpu,), (live_gpu,) = captured["gpus"], live["gpus"]
    assert {k: v for k, v in cap_gpu.items() if k not in NVML_ONLY} == {
        k: v for k, v in live_gpu.items() if k not in NVML_ONLY
    }
