"""The inventory of a real NVIDIA H200 machine, captured there, against what nvidia-smi and the live run said.

tests/fixtures/sysfs/h200-vm was captured with kiln-capture-sysfs on a lent machine with one H200
(tools/gpu-host-check.sh, 2026-12-04); tests/fixtures/gpu-host/ holds that run's live inventory
(NVML on, health included), nvidia-smi -q's output and the run's report (burn-in included).
`nvidia-smi nvlink -s` printed nothing there: this VM's H200 exposes no NVLink.
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
NVML_HEALTH = {"nvml", "not_supported", "persistence_mode", "ecc", "retired_pages", "remapped_rows", "power"}
NVML_HEALTH |= {"thermal", "throttle_reasons", "nvlinks"}


@pytest.fixture(scope="module")
def captured() -> dict:
    return collect(TREE, use_nvml=False)


@pytest.fixture(scope="module")
def live() -> dict:
    with open(os.path.join(LIVE, "inventory.json")) as f:
        return json.load(f)


def _smi(field: str, section: str | None = None) -> str:
    """A value from nvidia-smi -q's text, e.g. 'Product Name', or 'Current' under 'ECC Mode'."""
    with open(os.path.join(LIVE, "nvidia-smi-q.txt")) as f:
        lines = f.read().splitlines()
    if section is not None:
        start = next(i for i, line in enumerate(lines) if line.strip() == section)
        depth = len(lines[start]) - len(lines[start].lstrip())
        end = next(
            (i for i in range(start + 1, len(lines)) if len(lines[i]) - len(lines[i].lstrip()) <= depth),
            len(lines),
        )
        lines = lines[start + 1 : end]
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == field:
            return value.strip()
    raise AssertionError(f"{field} not in nvidia-smi -q output" + (f" under {section}" if section else ""))


def _smi_sum(section: str, sub: str, word: str) -> int:
    """Sum the counters of one kind ('Correctable') under 'ECC Errors' / Volatile or Aggregate."""
    with open(os.path.join(LIVE, "nvidia-smi-q.txt")) as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == section)
    start = next(i for i in range(start, len(lines)) if lines[i].strip() == sub)
    total = 0
    for line in lines[start + 1 :]:
        key, sep, value = line.partition(":")
        if not sep:
            break
        if word in key:
            total += int(value)
    return total


def _on_off(text: str) -> bool:
    return {"Enabled": True, "Disabled": False, "Yes": True, "No": False}[text]


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
    assert {k: v for k, v in cap_gpu.items() if k not in NVML_ONLY | {"health"}} == {
        k: v for k, v in live_gpu.items() if k not in NVML_ONLY | {"health"}
    }
    # Health: the kernel log's Xids (none on that machine) and the AMD fields come from the tree.
    assert {k: v for k, v in cap_gpu["health"].items() if k not in NVML_HEALTH} == {
        k: v for k, v in live_gpu["health"].items() if k not in NVML_HEALTH
    }
    assert cap_gpu["health"]["nvml"] is False and cap_gpu["health"]["ecc"] is None
    for key in ("source", "boot_id", "boot_time", "complete", "xid_count", "unmatched_xids"):
        assert captured["kernel_log"][key] == live["kernel_log"][key], key
    assert captured["kernel_log"]["records"] >= live["kernel_log"]["records"]  # captured a moment later


def test_health_matches_nvidia_smi(live) -> None:
    (gpu,) = live["gpus"]
    health = gpu["health"]
    assert health["nvml"] is True
    assert health["persistence_mode"] is _on_off(_smi("Persistence Mode"))
    ecc = health["ecc"]
    assert ecc["mode_current"] is _on_off(_smi("Current", "ECC Mode"))
    assert ecc["mode_pending"] is _on_off(_smi("Pending", "ECC Mode"))
    for counter, sub in (("volatile", "Volatile"), ("aggregate", "Aggregate")):
        # Hopper splits the totals into SRAM and DRAM counters; NVML's totals are their sums.
        assert ecc[counter]["correctable"] == _smi_sum("ECC Errors", sub, "Correctable")
        assert ecc[counter]["uncorrectable"] == _smi_sum("ECC Errors", sub, "Uncorrectable")
    # Retired pages are "N/A" on Hopper (it remaps rows): null, named as not supported, no error.
    assert _smi("Single Bit ECC", "Retired Pages") == "N/A"
    assert health["retired_pages"] is None and "retired_pages" in health["not_supported"]
    rows = health["remapped_rows"]
    assert rows["correctable"] == int(_smi("Correctable Error", "Remapped Rows"))
    assert rows["uncorrectable"] == int(_smi("Uncorrectable Error", "Remapped Rows"))
    assert rows["pending"] is _on_off(_smi("Pending", "Remapped Rows"))
    assert rows["failure"] is _on_off(_smi("Remapping Failure Occurred", "Remapped Rows"))
    watts = lambda text: float(text.split()[0])  # noqa: E731 - "700.00 W"
    # nvidia-smi's "Requested" is NVML's management limit, its "Current" the enforced one.
    assert health["power"]["limit_w"] == watts(_smi("Requested Power Limit", "GPU Power Readings"))
    assert health["power"]["enforced_limit_w"] == watts(_smi("Current Power Limit", "GPU Power Readings"))
    assert health["power"]["default_limit_w"] == watts(_smi("Default Power Limit", "GPU Power Readings"))
    # nvidia-smi 580 prints thresholds as margins below T.Limit: "GPU T.Limit Temp 55 C" is the margin
    # now (at "GPU Current Temp"), "Shutdown T.Limit -8 C" means 8 degrees past T.Limit.
    celsius = lambda field: int(_smi(field, "Temperature").split()[0])  # noqa: E731
    t_limit = celsius("GPU Current Temp") + celsius("GPU T.Limit Temp")
    assert health["thermal"]["gpu_max_c"] == t_limit - celsius("GPU Max Operating T.Limit Temp")
    assert health["thermal"]["shutdown_c"] == t_limit - celsius("GPU Shutdown T.Limit Temp")
    assert health["thermal"]["slowdown_c"] == t_limit - celsius("GPU Slowdown T.Limit Temp")
    active = {"Idle": "gpu_idle", "SW Power Cap": "sw_power_cap", "HW Slowdown": "hw_slowdown"}
    for smi_name, ours in active.items():
        assert (ours in health["throttle_reasons"]) is (_smi(smi_name, "Clocks Event Reasons") == "Active")
    # No NVLink on this VM's H200 (nvidia-smi nvlink -s printed nothing): NVML says not supported.
    assert health["nvlinks"] is None and "nvlinks" in health["not_supported"]
    assert health["xid_errors"] == [] and live["kernel_log"]["xid_count"] == 0
    assert live["kernel_log"]["complete"] is True
    assert [e for e in live["errors"] if e["path"] in ("nvml", "/dev/kmsg")] == []


def test_burn_in_ran_and_checked_out() -> None:
    """The run's report: the product matched the CPU's, and the burn-in left the health as it was."""
    with open(os.path.join(LIVE, "report.txt")) as f:
        report = f.read()
    assert re.search(r"fp32 4096\^3 product vs CPU float64: max relative error \S+ -> OK", report)
    match = re.search(r"bf16 8192\^3: \d+ products in [\d.]+ s = (\d+) TFLOP/s;.* -> OK", report)
    assert match and int(match.group(1)) > 400
    changed = re.search(r"0000:00:06.0 changed: (.*)", report).group(1)
    assert "ecc" not in changed and "remapped_rows" not in changed and "xid_errors" not in changed
