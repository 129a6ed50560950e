"""What the fleet page shows of a node's stored inventory: GPU, NIC and disk rows, and GPU health.

Reads Kiln's own inventory model (``gpus``, ``nics``) and Ironic's (``interfaces``) alike; a missing
or garbled field becomes "-", never an error, as the page must render whatever an agent sent.
"""

from __future__ import annotations

from typing import Any

from agent.demo.fleet import human_bytes, human_decimal_bytes, human_speed

DASH = "-"


def _dicts(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    if value is None or value == "" or isinstance(value, dict | list):
        return DASH
    return str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def gpus(inventory: dict) -> list[dict]:
    """Kiln's GPU records of ``inventory`` (virtual functions left out)."""
    return [g for g in _dicts(inventory.get("gpus")) if not g.get("is_virtual_function")]


def link_text(pcie: Any) -> tuple[str, bool]:
    """('x16 @ 32.0 GT/s (max x16 @ 32.0 GT/s)', degraded) of a PCIe link record."""
    if not isinstance(pcie, dict):
        return DASH, False
    width, speed = _int(pcie.get("current_width")), pcie.get("current_speed")
    max_width, max_speed = _int(pcie.get("max_width")), pcie.get("max_speed")

    def one(w: int | None, s: Any) -> str:
        parts = [f"x{w}" if w else "x?", str(s).removesuffix(" PCIe") if s else "?"]
        return " @ ".join(parts)

    text = one(width, speed)
    if (max_width, max_speed) != (width, speed) and (max_width or max_speed):
        text += f" (max {one(max_width, max_speed)})"
    return text, pcie.get("degraded") is True


def _counts(what: str, counts: Any) -> str | None:
    if not isinstance(counts, dict):
        return None
    ue, ce = _int(counts.get("uncorrectable")), _int(counts.get("correctable"))
    if ue is None and ce is None:
        return None
    return (
        f"{what}: {ue if ue is not None else '?'} uncorrectable, {ce if ce is not None else '?'} correctable"
    )


def gpu_health(gpu: dict) -> tuple[str, bool]:
    """(what the agent saw of the GPU's health, whether any of it is bad)."""
    health = gpu.get("health")
    if not isinstance(health, dict):
        return "not reported", False
    notes: list[str] = []
    bad = False
    xids = health.get("xid_errors")
    if isinstance(xids, list) and xids:
        numbers = sorted({x.get("xid") for x in _dicts(xids) if isinstance(x.get("xid"), int)})
        notes.append(f"Xid errors: {', '.join(map(str, numbers)) or len(xids)}")
        bad = True
    ecc = health.get("ecc")
    if isinstance(ecc, dict):
        volatile = _counts("ECC", ecc.get("volatile"))
        if volatile:
            notes.append(volatile)
            bad = bad or bool(_int((ecc.get("volatile") or {}).get("uncorrectable")))
    rows = health.get("remapped_rows")
    if isinstance(rows, dict):
        if rows.get("failure") or rows.get("pending"):
            bad = True
            notes.append("row remapping " + ("failed" if rows.get("failure") else "pending"))
    ras = health.get("ras")
    if isinstance(ras, dict):
        blocks = [b for b in ras.values() if isinstance(b, dict)]
        ue = sum(_int(b.get("ue")) or 0 for b in blocks)
        ce = sum(_int(b.get("ce")) or 0 for b in blocks)
        notes.append(f"RAS: {ue} uncorrectable, {ce} correctable")
        bad = bad or ue > 0
    throttle = health.get("throttle_reasons")
    if isinstance(throttle, list):
        slow = [str(t) for t in throttle if "slowdown" in str(t)]
        if slow:
            notes.append("throttled: " + ", ".join(slow))
            bad = True
    if not notes:
        return ("no errors seen" if isinstance(xids, list) else "no health data"), False
    return "; ".join(notes), bad


def gpu_rows(inventory: dict | None) -> list[dict[str, Any]]:
    """One row per GPU: address, model, SKU, memory, NUMA node, PCIe switch and link, driver, health."""
    rows = []
    for gpu in sorted(gpus(inventory or {}), key=lambda g: str(g.get("pci_address"))):
        link, degraded = link_text(gpu.get("pcie"))
        health, unhealthy = gpu_health(gpu)
        sku = gpu.get("sku") if isinstance(gpu.get("sku"), dict) else {}
        memory = _int(gpu.get("memory_bytes"))
        rows.append(
            {
                "pci_address": _text(gpu.get("pci_address")),
                "name": _text(gpu.get("name") or gpu.get("device_id")),
                "vendor": _text(gpu.get("vendor")),
                "sku": _text(sku.get("trait")),
                "memory": human_bytes(memory)
                if memory
                else (f"{sku['memory_gb']} GB" if sku.get("memory_gb") else DASH),
                "numa_node": _text(gpu.get("numa_node")),
                "pcie_switch": _text(gpu.get("pcie_switch")),
                "link": link,
                "degraded": degraded,
                "driver": _text(gpu.get("driver")),
                "serial": _text(gpu.get("serial") or gpu.get("uuid")),
                "health": health,
                "unhealthy": unhealthy,
            }
        )
    return rows


def nic_rows(inventory: dict | None) -> list[dict[str, Any]]:
    """One row per NIC: name, MAC, driver, speed, link, NUMA node, PCI address, SR-IOV VFs."""
    inventory = inventory or {}
    nics = _dicts(inventory.get("nics")) or _dicts(inventory.get("interfaces"))
    rows = []
    for nic in nics:
        if nic.get("is_virtual_function"):
            continue
        total = _int(nic.get("sriov_totalvfs"))
        rows.append(
            {
                "name": _text(nic.get("name")),
                "mac": _text(nic.get("mac_address")),
                "driver": _text(nic.get("driver")),
                "speed": human_speed(_int(nic.get("speed_mbps"))),
                "link": _text(nic.get("operstate") or nic.get("link_type")),
                "numa_node": _text(nic.get("numa_node")),
                "pci_address": _text(nic.get("pci_address")),
                "sriov": f"{_int(nic.get('sriov_numvfs')) or 0} of {total}" if total else DASH,
            }
        )
    return rows


def disk_rows(inventory: dict | None) -> list[dict[str, Any]]:
    """One row per disk: name, model, size, transport, media, NUMA node, serial."""
    rows = []
    for disk in _dicts((inventory or {}).get("disks")):
        rotational = disk.get("rotational")
        rows.append(
            {
                "name": _text(disk.get("name")),
                "model": _text(disk.get("model")),
                "size": human_decimal_bytes(_int(disk.get("size"))),
                "transport": _text(disk.get("transport")),
                "media": {True: "HDD", False: "SSD"}.get(rotational, DASH),
                "numa_node": _text(disk.get("numa_node")),
                "serial": _text(disk.get("serial")),
            }
        )
    return rows


def system_facts(inventory: dict | None) -> list[tuple[str, str]]:
    """(label, value) pairs of the machine: vendor and product, CPUs, memory, boot mode."""
    inventory = inventory or {}
    system = inventory.get("system") if isinstance(inventory.get("system"), dict) else {}
    vendor = inventory.get("system_vendor") if isinstance(inventory.get("system_vendor"), dict) else {}
    cpu = inventory.get("cpu") if isinstance(inventory.get("cpu"), dict) else {}
    memory = inventory.get("memory") if isinstance(inventory.get("memory"), dict) else {}
    mb = _int(memory.get("physical_mb"))
    return [
        (
            "System",
            f"{_text(system.get('vendor') or vendor.get('manufacturer'))} "
            f"{_text(system.get('product') or vendor.get('product_name'))}",
        ),
        ("Serial", _text(system.get("serial") or vendor.get("serial_number"))),
        ("CPU", f"{_text(cpu.get('model_name'))}, {_text(cpu.get('count'))} logical"),
        (
            "Memory",
            human_bytes(mb * 1024 * 1024)
            if mb
            else human_bytes(_int(memory.get("total_bytes")) or _int(memory.get("total"))),
        ),
        (
            "Boot mode",
            _text(system.get("boot_mode") or (inventory.get("boot") or {}).get("current_boot_mode")),
        ),
    ]


def inventory_errors(inventory: dict | None) -> list[str]:
    """What the agent could not read ('path: error'), as it listed it."""
    return [f"{e.get('path', '?')}: {e.get('error', '?')}" for e in _dicts((inventory or {}).get("errors"))]
