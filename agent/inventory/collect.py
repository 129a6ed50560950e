"""Put every collector together into one inventory document."""

from __future__ import annotations

import os

from agent.inventory import base, cpu, disks, gpus, memory, nics, pci, system, topology
from agent.inventory.model import Inventory


def collect(root: str = "/", use_nvml: bool = True, include_md: bool = False) -> Inventory:
    """Inventory the host under ``root``; never raises on bad host data."""
    r = base.Root(root)
    if not os.path.isdir(r.path):
        raise NotADirectoryError(f"inventory root {root!r} is not a directory")
    sysinfo = system.read_system(r)
    cpuinfo = cpu.read_cpu(r)
    meminfo = memory.read_memory(r)
    disk_list = disks.read_disks(r, include_md=include_md)
    nic_list = nics.read_nics(r)
    gpu_list = gpus.read_gpus(r, use_nvml=use_nvml)
    inv: Inventory = {
        "system": sysinfo,
        "cpu": cpuinfo,
        "memory": meminfo,
        "disks": disk_list,
        "nics": nic_list,
        "gpus": gpu_list,
        "nvswitches": gpus.read_nvswitches(r),
        "pci_devices": pci.read_pci_devices(r),
        "numa_topology": topology.numa_topology(r, cpuinfo, nic_list, gpu_list),
        "lldp": {},
        "errors": [],
    }
    if "kernel_log" in r.cache:  # read for NVIDIA GPUs' Xids
        inv["kernel_log"] = r.cache["kernel_log"]
    inv["errors"] = [p.as_dict() for p in r.errors]
    return inv


def usable_root(root: str) -> str | None:
    """Say why ``root`` cannot be inventoried at all, or None when it can."""
    if not os.path.isdir(root):
        return f"{root} is not a directory"
    if not (os.path.isdir(os.path.join(root, "sys")) or os.path.isdir(os.path.join(root, "proc"))):
        return f"{root} has neither sys/ nor proc/: not a host root or a captured tree"
    return None
