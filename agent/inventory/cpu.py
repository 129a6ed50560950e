"""Processors: model, architecture, topology (sockets, cores, threads), flags and NUMA nodes."""

from __future__ import annotations

import math
import platform
import re

from agent.inventory.base import Root, parse_cpulist
from agent.inventory.model import Cpu, NumaNode

CPU = "/sys/devices/system/cpu"
NODE = "/sys/devices/system/node"

# /proc/cpuinfo "CPU implementer" codes (Arm's MIDR register) and well-known parts.
_ARM_IMPLEMENTERS = {
    0x41: "ARM",
    0x42: "Broadcom",
    0x43: "Cavium",
    0x48: "HiSilicon",
    0x4E: "NVIDIA",
    0x50: "APM",
    0x51: "Qualcomm",
    0x61: "Apple",
    0xC0: "Ampere",
}
_ARM_PARTS = {
    (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD40): "Neoverse-V1",
    (0x41, 0xD49): "Neoverse-N2",
    (0x41, 0xD4F): "Neoverse-V2",
    (0x41, 0xD8E): "Neoverse-N3",
    (0x41, 0xD84): "Neoverse-V3",
    (0x41, 0xD08): "Cortex-A72",
    (0x48, 0xD01): "Kunpeng-920",
    (0xC0, 0xAC3): "Ampere-1",
    (0xC0, 0xAC4): "Ampere-1a",
}


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """Split /proc/cpuinfo into one key/value dict per block (processor, or arm's trailer)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current.setdefault(key.strip(), value.strip())
    if current:
        blocks.append(current)
    return blocks


def _first(blocks: list[dict[str, str]], key: str) -> str | None:
    for block in blocks:
        if block.get(key):
            return block[key]
    return None


def _int0(text: str | None) -> int | None:
    try:
        return int(text, 0) if text else None
    except ValueError:
        return None


def _arm_names(blocks: list[dict[str, str]]) -> tuple[str | None, str | None]:
    """Name an Arm CPU's vendor and model from its implementer and part codes."""
    implementer = _int0(_first(blocks, "CPU implementer"))
    part = _int0(_first(blocks, "CPU part"))
    vendor = _ARM_IMPLEMENTERS.get(implementer) if implementer is not None else None
    if implementer is None or part is None:
        return vendor, None
    model = _ARM_PARTS.get((implementer, part))
    return vendor, model or f"{vendor or hex(implementer)} part {part:#05x}"


def _architecture(root: Root, blocks: list[dict[str, str]]) -> str | None:
    arch = root.read("/proc/sys/kernel/arch", optional=True)
    if arch:
        return arch
    if _first(blocks, "flags") is not None:
        return "x86_64" if "lm" in (_first(blocks, "flags") or "").split() else "i686"
    text = " ".join(v for b in blocks for v in b.values())
    if re.search(r"aarch64", text, re.IGNORECASE) or _first(blocks, "CPU architecture") == "8":
        return "aarch64"
    if root.path == "/":
        return platform.machine() or None
    return None


def _frequency(root: Root, first_cpu: int | None, blocks: list[dict[str, str]]) -> float | None:
    if first_cpu is not None:
        khz = root.read_int(f"{CPU}/cpu{first_cpu}/cpufreq/cpuinfo_max_freq", optional=True)
        if khz and khz > 0:
            return khz / 1000.0
    mhz = _first(blocks, "cpu MHz")
    if mhz is None:
        return None
    try:
        value = float(mhz)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        root.note("/proc/cpuinfo", f"garbled: cpu MHz {mhz[:40]!r}")
        return None
    return value


def _cpulist(root: Root, rel: str) -> list[int] | None:
    text = root.read(rel, optional=True)
    cpus = parse_cpulist(text)
    if cpus is None and text is not None:
        root.note(rel, f"garbled: not a cpulist: {text[:40]!r}")
    return cpus


Topology = tuple[int | None, int | None, int | None]  # sockets, cores, threads per core


def _topology_from_lists(root: Root, online: list[int]) -> Topology | None:
    """Count from the sibling lists: one read per core and one per socket, not two per CPU."""
    online_set = set(online)
    in_core: set[int] = set()
    in_package: set[int] = set()
    cores = threads = sockets = 0
    for cpu in online:
        if cpu in in_core:
            continue
        base = f"{CPU}/cpu{cpu}/topology"
        siblings = _cpulist(root, f"{base}/thread_siblings_list")
        if not siblings or cpu not in siblings:
            return None
        siblings = [c for c in siblings if c in online_set]
        in_core.update(siblings)
        cores, threads = cores + 1, max(threads, len(siblings))
        if cpu not in in_package:
            package = _cpulist(root, f"{base}/core_siblings_list")
            if not package or cpu not in package:
                return None
            in_package.update(package)
            sockets += 1
    return (sockets, cores, threads) if cores else None


def _topology_from_ids(root: Root, online: list[int]) -> Topology | None:
    """Count distinct (physical_package_id, core_id) pairs."""
    cores: dict[tuple[int, int], int] = {}
    for cpu in online:
        base = f"{CPU}/cpu{cpu}/topology"
        package = root.read_int(f"{base}/physical_package_id", optional=True)
        core = root.read_int(f"{base}/core_id", optional=True)
        if package is None or core is None:
            return None
        cores[(package, core)] = cores.get((package, core), 0) + 1
    return (len({p for p, _ in cores}), len(cores), max(cores.values())) if cores else None


def _topology_from_cpuinfo(text: str) -> Topology:
    """Count from x86 /proc/cpuinfo's 'physical id' and 'core id' lines."""
    cores: dict[tuple[int, int], int] = {}
    for block in parse_cpuinfo(text):
        if "processor" not in block:
            continue
        package, core = _int0(block.get("physical id")), _int0(block.get("core id"))
        if package is None or core is None:
            return None, None, None
        cores[(package, core)] = cores.get((package, core), 0) + 1
    if not cores:
        return None, None, None
    return len({p for p, _ in cores}), len(cores), max(cores.values())


def _topology(root: Root, online: list[int], text: str) -> Topology:
    """Count sockets, physical cores and threads per core from sysfs, else from cpuinfo."""
    if online and root.exists(f"{CPU}/cpu{online[0]}/topology"):
        found = _topology_from_lists(root, online) or _topology_from_ids(root, online)
        if found:
            return found
    return _topology_from_cpuinfo(text)


def read_numa_nodes(root: Root) -> list[NumaNode]:
    """Read every NUMA node's CPUs, memory and distances from /sys/devices/system/node."""
    nodes: list[NumaNode] = []
    names = [n for n in root.listdir(NODE, optional=True) if re.fullmatch(r"node\d+", n)]
    for name in sorted(names, key=lambda n: int(n[4:])):
        base = f"{NODE}/{name}"
        cpulist = root.read(f"{base}/cpulist")
        cpus = parse_cpulist(cpulist)
        if cpus is None and cpulist is not None:
            root.note(f"{base}/cpulist", f"garbled: not a cpulist: {cpulist[:40]!r}")
        distances = None
        text = root.read(f"{base}/distance", optional=True)
        if text is not None:
            try:
                distances = [int(d) for d in text.split()]
            except ValueError:
                root.note(f"{base}/distance", f"garbled: {text[:40]!r}")
        nodes.append(
            {
                "node": int(name[4:]),
                "cpus": cpus or [],
                "cpulist": cpulist,
                "memory_bytes": _node_memory(root, f"{base}/meminfo"),
                "distances": distances,
            }
        )
    return nodes


def _node_memory(root: Root, rel: str) -> int | None:
    """Read 'Node 0 MemTotal:  123 kB' from a node's meminfo, in bytes."""
    text = root.read(rel, optional=True)
    if text is None:
        return None
    match = re.search(r"MemTotal:\s+(\d+)\s*kB", text)
    if match is None:
        root.note(rel, "garbled: no MemTotal line")
        return None
    return int(match.group(1)) * 1024


def read_cpu(root: Root) -> Cpu:
    """Read the processors' model, architecture, topology, frequency, flags and NUMA nodes."""
    text = root.read("/proc/cpuinfo") or ""
    first = parse_cpuinfo(text.split("\n\n", 1)[0])  # every processor block repeats the same facts
    online_text = root.read(f"{CPU}/online", optional=True)
    online = parse_cpulist(online_text)
    if online is None and online_text is not None:
        root.note(f"{CPU}/online", f"garbled: not a cpulist: {online_text[:40]!r}")
    if not online:
        online = [int(n) for n in re.findall(r"^processor\s*:\s*(\d+)", text, re.MULTILINE)]
    model = _first(first, "model name")
    vendor = _first(first, "vendor_id")
    flags = _first(first, "flags") or _first(first, "Features") or ""
    if _first(first, "CPU implementer") is not None:
        arm_vendor, arm_model = _arm_names(first)
        vendor = vendor or arm_vendor
        model = model or arm_model
    sockets, cores, threads = _topology(root, online, text)
    return {
        "model_name": model,
        "architecture": _architecture(root, first),
        "vendor": vendor,
        "count": len(online) or None,
        "sockets": sockets,
        "cores": cores,
        "threads_per_core": threads,
        "frequency_mhz": _frequency(root, online[0] if online else None, first),
        "flags": flags.split(),
        "numa_nodes": read_numa_nodes(root),
    }
