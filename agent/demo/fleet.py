"""The fleet table: one row per node, summarised from the inventory the conductor stored."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

COLUMNS = ("node", "state", "CPUs", "memory", "GPUs", "GPU NUMA", "GPU links", "NICs", "disks")


@dataclass
class FleetRow:
    """What the table shows of one node; every cell is already text."""

    node: str
    state: str
    cpus: str = "-"
    memory: str = "-"
    gpus: str = "-"
    gpu_numa: str = "-"
    gpu_links: str = "-"
    nics: str = "-"
    disks: str = "-"
    traits: list[str] = field(default_factory=list)

    def cells(self) -> tuple[str, ...]:
        """The row's cells in COLUMNS order."""
        return (
            self.node,
            self.state,
            self.cpus,
            self.memory,
            self.gpus,
            self.gpu_numa,
            self.gpu_links,
            self.nics,
            self.disks,
        )


def _list(inventory: dict, key: str) -> list[dict]:
    value = inventory.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _num(value: float) -> str:
    """Whole numbers from 10 up, else one decimal (dropped when it is .0)."""
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}".removesuffix(".0")


def human_bytes(n: int | float | None) -> str:
    """1024-based size with one unit, e.g. 2 TiB, 960 GiB; '-' when unknown."""
    if not isinstance(n, int | float) or n <= 0:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{_num(value)} {unit}"
        value /= 1024
    return "-"  # unreachable


def human_decimal_bytes(n: int | float | None) -> str:
    """1000-based size as disk vendors count it, e.g. 3.8 TB; '-' when unknown."""
    if not isinstance(n, int | float) or n <= 0:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{_num(value)} {unit}"
        value /= 1000
    return "-"  # unreachable


def human_speed(mbps: int | None) -> str:
    """NIC speed: 400G, 25G, 1G, 100M."""
    if not isinstance(mbps, int) or mbps <= 0:
        return "?"
    return f"{mbps // 1000}G" if mbps >= 1000 and mbps % 1000 == 0 else f"{mbps}M"


def cpu_cell(inventory: dict) -> str:
    """Logical CPUs and sockets, e.g. '224 (2 sockets)'."""
    cpu = inventory.get("cpu") if isinstance(inventory.get("cpu"), dict) else {}
    count, sockets = cpu.get("count"), cpu.get("sockets")
    if not isinstance(count, int):
        return "-"
    return (
        f"{count} ({sockets} socket{'s' if sockets != 1 else ''})" if isinstance(sockets, int) else str(count)
    )


def memory_cell(inventory: dict) -> str:
    """Installed memory (DIMMs when known, else what the kernel sees)."""
    mem = inventory.get("memory") if isinstance(inventory.get("memory"), dict) else {}
    physical_mb = mem.get("physical_mb")
    if isinstance(physical_mb, int) and physical_mb > 0:
        return human_bytes(physical_mb * 1024 * 1024)
    return human_bytes(mem.get("total_bytes"))


def gpu_cells(inventory: dict) -> tuple[str, str, str]:
    """(model x count, NUMA spread like '4+4', link state like 'x16 ok' or '1 degraded')."""
    gpus = _list(inventory, "gpus")
    if not gpus:
        return "-", "-", "-"
    models = Counter(str(g.get("name") or g.get("device_id") or "unknown") for g in gpus)
    model = ", ".join(f"{name} x {n}" for name, n in sorted(models.items(), key=lambda kv: (-kv[1], kv[0])))
    numa = Counter(g.get("numa_node") if isinstance(g.get("numa_node"), int) else None for g in gpus)
    known = sorted(k for k in numa if k is not None and k >= 0)
    spread = "+".join(str(numa[k]) for k in known)
    unknown = sum(n for k, n in numa.items() if k is None or k < 0)
    if unknown:
        spread = f"{spread}+{unknown}?" if spread else "?"
    return model, spread, _link_cell(gpus)


def _link_cell(gpus: list[dict]) -> str:
    degraded, widths, unknown = 0, Counter(), 0
    for gpu in gpus:
        pcie = gpu.get("pcie") if isinstance(gpu.get("pcie"), dict) else {}
        if pcie.get("degraded") is True:
            degraded += 1
        elif isinstance(pcie.get("current_width"), int):
            widths[pcie["current_width"]] += 1
        else:
            unknown += 1
    parts = []
    if widths:
        if len(widths) == 1 and not degraded and not unknown:
            parts.append(f"x{next(iter(widths))} ok")
        else:
            parts.extend(f"{n} x{w} ok" for w, n in sorted(widths.items(), reverse=True))
    if degraded:
        parts.append(f"{degraded} degraded")
    if unknown:
        parts.append(f"{unknown} unknown")
    return ", ".join(parts)


def nic_cell(inventory: dict) -> str:
    """Physical NICs: count x fastest speed, and SR-IOV capable ones, e.g. '9 x 400G, SR-IOV 8'."""
    nics = [n for n in _list(inventory, "nics") if not n.get("is_virtual_function") and n.get("pci_address")]
    if not nics:
        return "-"
    speeds = [n["speed_mbps"] for n in nics if isinstance(n.get("speed_mbps"), int) and n["speed_mbps"] > 0]
    text = f"{len(nics)} x {human_speed(max(speeds)) if speeds else '?'}"
    sriov = sum(1 for n in nics if isinstance(n.get("sriov_totalvfs"), int) and n["sriov_totalvfs"] > 0)
    if sriov:
        text += f", SR-IOV {sriov}"
    return text


def disk_cell(inventory: dict) -> str:
    """Disk count and total size, e.g. '10, 32 TB'."""
    disks = _list(inventory, "disks")
    if not disks:
        return "-"
    total = sum(d["size"] for d in disks if isinstance(d.get("size"), int) and d["size"] > 0)
    return f"{len(disks)}, {human_decimal_bytes(total)}"


def summarise(node: str, state: str, inventory: dict | None, traits: list[str] | None = None) -> FleetRow:
    """One table row for a node, from its stored inventory (never raises on odd data)."""
    row = FleetRow(node=node, state=state, traits=sorted(traits or []))
    if not isinstance(inventory, dict):
        return row
    row.cpus = cpu_cell(inventory)
    row.memory = memory_cell(inventory)
    row.gpus, row.gpu_numa, row.gpu_links = gpu_cells(inventory)
    row.nics = nic_cell(inventory)
    row.disks = disk_cell(inventory)
    return row


def render(rows: list[FleetRow]) -> str:
    """The rows as a plain-text table with a header line."""
    table = [COLUMNS, *(r.cells() for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]

    def fmt(line: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(COLUMNS), rule, *(fmt(r.cells()) for r in rows)])


def stored_rows(labels: dict[str, str] | None = None) -> list[FleetRow]:
    """Rows for every node in the database (``labels`` maps node UUIDs to display names)."""
    from agent.db import api as db_api

    rows = []
    for node in db_api.list_nodes():
        name = (labels or {}).get(node.uuid) or node.name or node.uuid
        inventory: Any = db_api.get_node_inventory(node.id)
        rows.append(summarise(name, node.provision_state or "-", inventory, db_api.get_node_traits(node.id)))
    return rows
