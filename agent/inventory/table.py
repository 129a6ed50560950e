"""A readable summary of an inventory for a person at a terminal: GPUs first."""

from __future__ import annotations

from collections import Counter


def _size(n: int | None) -> str:
    """Format a byte count the way an operator reads it (GiB/TiB, or '?')."""
    if n is None:
        return "?"
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _rows(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Lay out rows in aligned columns under their headers."""
    cells = [headers] + [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def _link(gpu: dict) -> str:
    """Describe a PCIe link as 'Gen speed xW' with a DEGRADED flag."""
    link = gpu.get("pcie") or {}
    cur = f"{link.get('current_speed') or '?'} x{link.get('current_width') or '?'}"
    if link.get("degraded"):
        return f"{cur} DEGRADED (max {link.get('max_speed')} x{link.get('max_width')})"
    return cur


def render(inv: dict) -> str:
    """Render the inventory as text tables: GPUs, system, CPU/memory, NICs, disks, errors."""
    out: list[str] = []
    gpus = inv.get("gpus") or []
    models = Counter(g.get("name") or g.get("device_id") for g in gpus)
    summary = ", ".join(f"{n} x {m}" for m, n in models.items()) or "none"
    out.append(f"GPUs: {summary}; NVSwitches: {len(inv.get('nvswitches') or [])}")
    if gpus:
        out += _rows(
            ["PCI", "MODEL", "MEMORY", "NUMA", "DRIVER", "PCIE LINK", "IOMMU", "VBIOS"],
            [
                [
                    g["pci_address"],
                    g.get("name"),
                    _size(g.get("memory_bytes") or _sku_mem(g)),
                    g.get("numa_node"),
                    g.get("driver"),
                    _link(g),
                    g.get("iommu_group"),
                    g.get("vbios_version"),
                ]
                for g in gpus
            ],
        )
    sysd = inv.get("system") or {}
    cpu = inv.get("cpu") or {}
    mem = inv.get("memory") or {}
    out.append("")
    out.append(
        f"System: {sysd.get('vendor')} {sysd.get('product')} serial {sysd.get('serial')} "
        f"uuid {sysd.get('uuid')} boot {sysd.get('boot_mode')} pxe {sysd.get('pxe_interface')} "
        f"host {sysd.get('hostname')}"
    )
    numa = cpu.get("numa_nodes") or []
    out.append(
        f"CPU: {cpu.get('sockets')} x {cpu.get('model_name')} ({cpu.get('cores')} cores, "
        f"{cpu.get('count')} threads, {cpu.get('architecture')}), NUMA nodes {len(numa)}; "
        f"memory {_size(mem.get('total_bytes'))} usable, {mem.get('physical_mb')} MiB physical"
    )
    nics = inv.get("nics") or []
    out.append("")
    out.append(f"NICs: {len(nics)}")
    if nics:
        out += _rows(
            ["NAME", "MAC", "SPEED", "LINK", "DRIVER", "PCI", "NUMA", "SR-IOV"],
            [
                [
                    n["name"],
                    n.get("mac_address"),
                    f"{n['speed_mbps']} Mb/s" if n.get("speed_mbps") else "unknown",
                    {True: "up", False: "down"}.get(n.get("carrier"), "?"),
                    n.get("driver"),
                    n.get("pci_address"),
                    n.get("numa_node"),
                    f"{n.get('sriov_numvfs')}/{n.get('sriov_totalvfs')}" if n.get("sriov_totalvfs") else "",
                ]
                for n in nics
            ],
        )
    disks = inv.get("disks") or []
    out.append("")
    out.append(f"Disks: {len(disks)}")
    if disks:
        out += _rows(
            ["NAME", "MODEL", "SIZE", "TRANSPORT", "ROT", "SERIAL", "NUMA"],
            [
                [
                    d["name"],
                    d.get("model"),
                    _size(d.get("size")),
                    d.get("transport"),
                    {True: "hdd", False: "ssd"}.get(d.get("rotational"), "?"),
                    d.get("serial"),
                    d.get("numa_node"),
                ]
                for d in disks
            ],
        )
    errors = inv.get("errors") or []
    if errors:
        out.append("")
        out.append(f"Problems reading the host: {len(errors)}")
        out += [f"  {e['path']}: {e['error']}" for e in errors[:20]]
        if len(errors) > 20:
            out.append(f"  ... and {len(errors) - 20} more (see --format json)")
    return "\n".join(out) + "\n"


def _sku_mem(gpu: dict) -> int | None:
    """Memory from the catalogue when the host did not say (shown, never stored as measured)."""
    gb = (gpu.get("sku") or {}).get("memory_gb")
    return int(gb * (1 << 30)) if gb else None
