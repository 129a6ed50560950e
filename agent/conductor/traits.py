"""Traits and scheduling properties derived from a node's inventory (Kiln's own ``json`` format).

Kiln manages only the traits this module can produce (``is_managed``); any other trait on a node
was set by an operator and is kept when the inventory changes. Nothing here raises on odd host
data: a missing or garbled field simply yields no trait or no property.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from agent.inventory import catalogue

GiB = 1024**3
MiB = 1024**2
#: Ironic's smallest root disk: anything below 4 GiB cannot hold an image.
ROOT_DISK_MIN_BYTES = 4 * GiB

GPU_VENDORS = {0x10DE: "NVIDIA", 0x1002: "AMD", 0x8086: "INTEL"}
TRAIT_NVSWITCH = "CUSTOM_NVSWITCH"
TRAIT_NIC_SRIOV = "CUSTOM_NIC_SRIOV"
TRAIT_GPU_LINK_DEGRADED = "CUSTOM_GPU_LINK_DEGRADED"
TRAIT_BOOT_UEFI = "CUSTOM_BOOT_UEFI"

_FIXED = frozenset(
    {TRAIT_NVSWITCH, TRAIT_NIC_SRIOV, TRAIT_GPU_LINK_DEGRADED, TRAIT_BOOT_UEFI}
    | {f"CUSTOM_GPU_{v}" for v in GPU_VENDORS.values()}
)
_PATTERNS = (re.compile(r"CUSTOM_GPU_COUNT_\d+"), re.compile(r"CUSTOM_NIC_\d+(_\d+)?[GM]"))
_NOT_SLUG = re.compile(r"[^A-Z0-9]+")
#: Memo bounds: SKU names, trait names and the like are few, but host data could bring many.
_MEMO_SIZE = 4096


def _dicts(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    """An int from an int or a "0x10de"/"4096" string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None


@functools.lru_cache(maxsize=_MEMO_SIZE)
def slug(text: str) -> str:
    """An upper-case trait fragment of ``text``: runs of anything but A-Z and 0-9 become one "_"."""
    return _NOT_SLUG.sub("_", text.upper()).strip("_")


#: (catalogue table, its SKU traits): computed once per loaded table (the catalogue loads it once).
_SKU_TRAITS: tuple[Any, frozenset[str]] | None = None


def sku_traits() -> frozenset[str]:
    """Every CUSTOM_GPU_<sku> trait the catalogue can produce."""
    global _SKU_TRAITS
    table = catalogue.load_table()
    memo = _SKU_TRAITS
    if memo is None or memo[0] is not table:
        memo = _SKU_TRAITS = (table, frozenset(f"CUSTOM_GPU_{slug(t)}" for t in catalogue.traits()))
        _managed_by_name.cache_clear()  # its answers went by the previous table
    return memo[1]


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _managed_by_name(trait: str) -> bool:
    """Whether ``trait`` is one Kiln can produce (fixed, a catalogue SKU, or a count/speed pattern)."""
    if trait in _FIXED or trait in sku_traits():
        return True
    return any(p.fullmatch(trait) for p in _PATTERNS)


def is_managed(trait: str, previously_set: Iterable[str] = ()) -> bool:
    """Whether Kiln owns ``trait`` (it may add or remove it); ``previously_set``: what Kiln set before."""
    if not isinstance(previously_set, set | frozenset):
        previously_set = set(previously_set)
    return trait in previously_set or _managed_by_name(trait)


def _gpus(inventory: dict) -> list[dict]:
    return [g for g in _dicts(inventory.get("gpus")) if not g.get("is_virtual_function")]


def _gpu_sku(gpu: dict) -> str | None:
    sku = gpu.get("sku")
    if isinstance(sku, dict) and isinstance(sku.get("trait"), str) and slug(sku["trait"]):
        return slug(sku["trait"])
    return None


def nic_speed_trait(speed_mbps: int) -> str:
    """CUSTOM_NIC_<speed>: 25000 -> CUSTOM_NIC_25G, 2500 -> CUSTOM_NIC_2_5G, 100 -> CUSTOM_NIC_100M."""
    if speed_mbps >= 1000:
        gbps = f"{speed_mbps / 1000:g}".replace(".", "_")
        return f"CUSTOM_NIC_{gbps}G"
    return f"CUSTOM_NIC_{speed_mbps}M"


def derive_traits(inventory: dict) -> list[str]:
    """The traits Kiln derives from ``inventory``, sorted."""
    found: set[str] = set()
    gpus = _gpus(inventory)
    for gpu in gpus:
        sku = _gpu_sku(gpu)
        if sku:
            found.add(f"CUSTOM_GPU_{sku}")
        vendor = GPU_VENDORS.get(_int(gpu.get("vendor_id")) or -1)
        if vendor:
            found.add(f"CUSTOM_GPU_{vendor}")
        pcie = gpu.get("pcie")
        if isinstance(pcie, dict) and pcie.get("degraded") is True:
            found.add(TRAIT_GPU_LINK_DEGRADED)
    if gpus:
        found.add(f"CUSTOM_GPU_COUNT_{len(gpus)}")
    if _dicts(inventory.get("nvswitches")):
        found.add(TRAIT_NVSWITCH)
    nics = _dicts(inventory.get("nics"))
    if any((_int(n.get("sriov_totalvfs")) or 0) > 0 for n in nics):
        found.add(TRAIT_NIC_SRIOV)
    speeds = [s for s in (_int(n.get("speed_mbps")) for n in nics) if s is not None and s > 0]
    if speeds:
        found.add(nic_speed_trait(max(speeds)))
    system = inventory.get("system")
    if isinstance(system, dict) and system.get("boot_mode") == "uefi":
        found.add(TRAIT_BOOT_UEFI)
    return sorted(found)


def merge_traits(
    current: Iterable[str], derived: Iterable[str], previously_set: Iterable[str] = ()
) -> list[str]:
    """``current`` without the traits Kiln manages, plus ``derived``; sorted."""
    previous = set(previously_set)
    kept = {t for t in current if not is_managed(t, previous)}
    return sorted(kept | set(derived))


def root_disk(inventory: dict) -> dict | None:
    """The root disk candidate, as Ironic picks it without hints: the smallest disk of at least 4 GiB."""
    candidates = [
        d for d in _dicts(inventory.get("disks")) if (_int(d.get("size")) or 0) >= ROOT_DISK_MIN_BYTES
    ]
    return min(candidates, key=lambda d: (_int(d.get("size")), str(d.get("name")))) if candidates else None


def derive_properties(inventory: dict) -> dict[str, Any]:
    """Ironic's scheduling properties from ``inventory``: cpus, memory_mb, local_gb, cpu_arch, boot mode.

    Only the keys that could be read are returned; ``capabilities`` holds just "boot_mode:<mode>"
    (merge it into the node's own capabilities with ``merge_capabilities``).
    """
    props: dict[str, Any] = {}
    cpu = inventory.get("cpu") if isinstance(inventory.get("cpu"), dict) else {}
    count = _int(cpu.get("count"))
    if count and count > 0:
        props["cpus"] = count
    if isinstance(cpu.get("architecture"), str) and cpu["architecture"]:
        props["cpu_arch"] = cpu["architecture"]
    memory = inventory.get("memory") if isinstance(inventory.get("memory"), dict) else {}
    physical = _int(memory.get("physical_mb"))
    total = _int(memory.get("total_bytes"))
    if physical and physical > 0:
        props["memory_mb"] = physical
    elif total and total > 0:
        props["memory_mb"] = total // MiB
    disk = root_disk(inventory)
    if disk is not None:
        props["local_gb"] = max(_int(disk.get("size")) // GiB - 1, 0)
    system = inventory.get("system") if isinstance(inventory.get("system"), dict) else {}
    if system.get("boot_mode") in ("uefi", "bios"):
        props["capabilities"] = f"boot_mode:{system['boot_mode']}"
    return props


def merge_capabilities(current: Any, updates: str) -> str:
    """Ironic's "key:value,..." capabilities ``current``, the pairs of ``updates`` replacing theirs."""
    pairs: dict[str, str] = {}
    for text in (current if isinstance(current, str) else "", updates):
        for item in text.split(","):
            key, sep, value = item.strip().partition(":")
            if key and sep:
                pairs[key] = value
    return ",".join(f"{k}:{v}" for k, v in pairs.items())
