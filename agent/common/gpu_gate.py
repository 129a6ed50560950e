"""The GPU acceptance gate: what a node's GPUs should be, and how the GPUs found now differ from it.

Shared by the conductor (which builds the expectation from the node's properties and its first
accepted inventory) and the agent (whose ``verify_gpus`` clean step compares the GPUs it reads now
with that expectation). Pure functions on Kiln's inventory records; nothing here reads hardware.

An expectation is plain JSON, passed to the agent as the step's ``expected`` argument::

    {"count": 8, "sku": "H100_SXM5_80GB",
     "gpus": {"0000:18:00.0": {"sku", "serial", "uuid", "memory_bytes", "numa_node", "width",
                               "speed", "nvlinks", "nvlink_speed_mb_s", "xgmi"}},
     "nvswitches": ["0000:c9:00.0", ...]}

Every key may be missing or null: only what is known is checked. A finding names the check, the
GPU (PCI address and serial) and what was wrong.
"""

from __future__ import annotations

import re
from typing import Any

#: Every check a finding may name.
CHECKS = (
    "missing", "new", "count", "sku", "memory", "numa", "pcie_link", "nvlink", "xgmi", "nvswitch", "ecc",
    "row_remap", "xid", "burnin",
)  # fmt: skip

_SPEED_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)")


def _dicts(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def gt_per_s(speed: Any) -> float | None:
    """The GT/s of a sysfs link speed ("32.0 GT/s PCIe" -> 32.0); None when unreadable."""
    match = _SPEED_RE.match(speed) if isinstance(speed, str) else None
    return float(match.group(1)) if match else None


def physical_gpus(inventory: dict) -> list[dict]:
    """The inventory's GPUs, without SR-IOV virtual functions."""
    return [g for g in _dicts(inventory.get("gpus")) if not g.get("is_virtual_function")]


def _sku(gpu: dict) -> str | None:
    sku = gpu.get("sku")
    return sku["trait"] if isinstance(sku, dict) and isinstance(sku.get("trait"), str) else None


def _active_nvlinks(gpu: dict) -> int | None:
    links = (gpu.get("health") or {}).get("nvlinks")
    return sum(1 for link in _dicts(links) if link.get("active") is True) if isinstance(links, list) else None


def _nvlink_speed(gpu: dict) -> int | None:
    """The slowest active NVLink's speed (MB/s); None when none is known."""
    links = (gpu.get("health") or {}).get("nvlinks")
    speeds = [_int(link.get("speed_mb_s")) for link in _dicts(links) if link.get("active") is True]
    known = [v for v in speeds if v is not None]
    return min(known) if known else None


def unchecked(inventory: dict) -> list[str]:
    """The GPUs whose ECC, row remap and NVLink state could not be read (NVIDIA without NVML)."""
    return [
        f"GPU {g.get('pci_address')}: ECC, row remapping and NVLink not checked (NVML not available)"
        for g in physical_gpus(inventory)
        if g.get("vendor_id") == "0x10de" and not (g.get("health") or {}).get("nvml")
    ]


def _xgmi_links(gpu: dict) -> int | None:
    links = (gpu.get("health") or {}).get("xgmi_links")
    return len(_dicts(links)) if isinstance(links, list) else None


def expectation_from_inventory(inventory: dict) -> dict[str, Any]:
    """What the node should have, from an accepted inventory: per GPU its SKU, memory, NUMA, link, NVLinks."""
    gpus = {}
    for gpu in physical_gpus(inventory):
        pcie = gpu.get("pcie") if isinstance(gpu.get("pcie"), dict) else {}
        # The link's maximum, not its current state: a link degraded at first sight is still caught.
        gpus[gpu.get("pci_address")] = {
            "sku": _sku(gpu),
            "serial": gpu.get("serial") if isinstance(gpu.get("serial"), str) else None,
            "uuid": gpu.get("uuid") if isinstance(gpu.get("uuid"), str) else None,
            "memory_bytes": _int(gpu.get("memory_bytes")),
            "numa_node": _int(gpu.get("numa_node")),
            "width": _int(pcie.get("max_width")),
            "speed": pcie.get("max_speed") if isinstance(pcie.get("max_speed"), str) else None,
            "nvlinks": _active_nvlinks(gpu),
            "nvlink_speed_mb_s": _nvlink_speed(gpu),
            "xgmi": _xgmi_links(gpu),
        }
    switches = sorted(
        s["address"] for s in _dicts(inventory.get("nvswitches")) if isinstance(s.get("address"), str)
    )
    return {"count": len(gpus), "sku": None, "gpus": gpus, "nvswitches": switches}


def _finding(check: str, gpu: dict | None, message: str, address: str | None = None) -> dict[str, Any]:
    gpu = gpu or {}
    return {
        "check": check,
        "pci_address": gpu.get("pci_address") or address,
        "serial": gpu.get("serial") if isinstance(gpu.get("serial"), str) else None,
        "message": message,
    }


def check_gpus(inventory: dict, expected: dict | None, xids: list[int]) -> list[dict[str, Any]]:
    """Compare the inventory's GPUs with ``expected`` and their health; return the findings (empty: pass).

    ``xids``: the Xid numbers that fail the gate when the kernel log of this boot has them.
    """
    expected = expected or {}
    found = {g.get("pci_address"): g for g in physical_gpus(inventory)}
    out: list[dict[str, Any]] = []
    per_gpu = expected.get("gpus") if isinstance(expected.get("gpus"), dict) else None
    if per_gpu is not None:
        for address in sorted(set(per_gpu) - set(found)):
            gone = {"pci_address": address, "serial": (per_gpu[address] or {}).get("serial")}
            out.append(_finding("missing", gone, "GPU expected here is missing"))
        for address in sorted(set(found) - set(per_gpu)):
            out.append(_finding("new", found[address], "GPU not in the node's expected GPUs is present"))
    count = _int(expected.get("count"))
    if count is not None and count != len(found) and (per_gpu is None or len(per_gpu) != count):
        out.append(_finding("count", None, f"node has {len(found)} GPU(s), expected {count}"))
    for address, gpu in sorted(found.items(), key=lambda kv: str(kv[0])):
        want = dict((per_gpu or {}).get(address) or {})
        if expected.get("sku"):
            want["sku"] = expected["sku"]
        out.extend(_compare(gpu, want))
        out.extend(_health(gpu, set(xids)))
    out.extend(_unmatched_xids(inventory, set(xids)))
    have = {s.get("address") for s in _dicts(inventory.get("nvswitches"))}
    for address in expected.get("nvswitches") or []:
        if address not in have:
            out.append(_finding("nvswitch", None, "NVSwitch expected here is missing", address))
    return out


def _compare(gpu: dict, want: dict) -> list[dict[str, Any]]:
    out = []
    for key in ("serial", "uuid"):
        now = gpu.get(key)
        if isinstance(want.get(key), str) and isinstance(now, str) and now != want[key]:
            out.append(_finding("new", gpu, f"GPU {key} {now} replaced the expected {want[key]}"))
            break
    if want.get("sku") and _sku(gpu) != want["sku"]:
        out.append(_finding("sku", gpu, f"SKU is {_sku(gpu)}, expected {want['sku']}"))
    memory, numa = _int(gpu.get("memory_bytes")), _int(gpu.get("numa_node"))
    if _int(want.get("memory_bytes")) is not None and memory is not None and memory != want["memory_bytes"]:
        out.append(_finding("memory", gpu, f"memory is {memory} bytes, expected {want['memory_bytes']}"))
    if _int(want.get("numa_node")) is not None and numa != want["numa_node"]:
        out.append(_finding("numa", gpu, f"NUMA node is {numa}, expected {want['numa_node']}"))
    pcie = gpu.get("pcie") if isinstance(gpu.get("pcie"), dict) else {}
    width, speed = _int(pcie.get("current_width")), pcie.get("current_speed")
    want_width = _int(want.get("width")) or _int(pcie.get("max_width"))
    want_speed = want.get("speed") or pcie.get("max_speed")
    slow = (
        gt_per_s(speed) is not None
        and gt_per_s(want_speed) is not None
        and gt_per_s(speed) < gt_per_s(want_speed)
    )
    narrow = width is not None and want_width is not None and width < want_width
    if slow or narrow or pcie.get("degraded") is True:
        out.append(
            _finding(
                "pcie_link",
                gpu,
                f"PCIe link runs x{width} at {speed}, expected x{want_width} at {want_speed}",
            )
        )
    links = _active_nvlinks(gpu)
    if _int(want.get("nvlinks")) is not None and links is not None and links < want["nvlinks"]:
        out.append(_finding("nvlink", gpu, f"{links} NVLink link(s) active, expected {want['nvlinks']}"))
    speed = _nvlink_speed(gpu)
    if (
        _int(want.get("nvlink_speed_mb_s")) is not None
        and speed is not None
        and speed < want["nvlink_speed_mb_s"]
    ):
        out.append(
            _finding(
                "nvlink", gpu, f"an NVLink link runs at {speed} MB/s, expected {want['nvlink_speed_mb_s']}"
            )
        )
    xgmi = _xgmi_links(gpu)
    if _int(want.get("xgmi")) is not None and xgmi is not None and xgmi < want["xgmi"]:
        out.append(_finding("xgmi", gpu, f"{xgmi} XGMI link(s) to peer GPUs, expected {want['xgmi']}"))
    return out


def _health(gpu: dict, xids: set[int]) -> list[dict[str, Any]]:
    health = gpu.get("health") if isinstance(gpu.get("health"), dict) else {}
    out = []
    volatile = ((health.get("ecc") or {}).get("volatile") or {}).get("uncorrectable")
    if _int(volatile):
        out.append(_finding("ecc", gpu, f"{volatile} uncorrectable ECC error(s) since the driver loaded"))
    ras = health.get("ras") if isinstance(health.get("ras"), dict) else {}
    for block, counts in sorted(ras.items()):
        if isinstance(counts, dict) and _int(counts.get("ue")):
            out.append(_finding("ecc", gpu, f"{counts['ue']} uncorrectable RAS error(s) in block {block}"))
    rows = health.get("remapped_rows") if isinstance(health.get("remapped_rows"), dict) else {}
    if rows.get("pending") is True or rows.get("failure") is True:
        what = (
            "a row remap failed"
            if rows.get("failure") is True
            else "row remapping is pending (reset the GPU)"
        )
        out.append(_finding("row_remap", gpu, what))
    pages = health.get("retired_pages") if isinstance(health.get("retired_pages"), dict) else {}
    if pages.get("pending") is True:
        out.append(_finding("row_remap", gpu, "page retirement is pending (reset the GPU)"))
    seen = sorted({e.get("xid") for e in _dicts(health.get("xid_errors")) if e.get("xid") in xids})
    if seen:
        out.append(
            _finding("xid", gpu, f"Xid {', '.join(map(str, seen))} in the kernel log since the last boot")
        )
    return out


def _unmatched_xids(inventory: dict, xids: set[int]) -> list[dict[str, Any]]:
    """Listed Xids of a PCI address that is no GPU now (a GPU that fell off the bus is no longer found)."""
    log = inventory.get("kernel_log") if isinstance(inventory.get("kernel_log"), dict) else {}
    by_address: dict[str, set[int]] = {}
    for event in _dicts(log.get("unmatched_xids")):
        if event.get("xid") in xids and isinstance(event.get("pci_address"), str):
            by_address.setdefault(event["pci_address"], set()).add(event["xid"])
    return [
        _finding("xid", None, f"Xid {', '.join(map(str, sorted(n)))} in the kernel log since the last boot "
                 "(no GPU is found at this address now)", address)
        for address, n in sorted(by_address.items())
    ]  # fmt: skip


def describe(findings: list[dict[str, Any]]) -> str:
    """One line per finding: 'GPU <address> (serial <s>): <check>: <message>'."""
    lines = []
    for f in findings:
        if f.get("pci_address"):
            who = f"GPU {f['pci_address']} (serial {f.get('serial') or 'unknown'})"
        else:
            who = "GPUs"
        lines.append(f"{who}: {f.get('check')}: {f.get('message')}")
    return "; ".join(lines)
