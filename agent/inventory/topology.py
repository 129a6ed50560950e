"""NUMA topology in ironic-python-agent's ``numa_topology`` shape, plus GPUs and GPU links.

IPA's collector reports, per NUMA node: ``ram`` ({numa_node, size_kb} from the node's
MemTotal), ``cpus`` (one entry per (numa_node, core_id) with the logical CPUs sharing
that core as ``thread_siblings``) and ``nics`` (every interface with a device, and the
node its device reports; -1 means no affinity). Kiln adds ``gpus``.
"""

from __future__ import annotations

from agent.inventory.base import Root
from agent.inventory.model import Cpu, Gpu, Nic

KFD_NODES = "/sys/class/kfd/kfd/topology/nodes"
KFD_LINK_TYPES = {2: "PCIe", 11: "XGMI"}


def numa_topology(root: Root, cpu: Cpu, nics: list[Nic], gpus: list[Gpu]) -> dict:
    """Return {'ram', 'cpus', 'nics', 'gpus'} keyed by NUMA node the way IPA's collector does."""
    ram = []
    cores: dict[tuple[int, int], dict] = {}
    for node in sorted(cpu.get("numa_nodes") or [], key=lambda n: n["node"]):
        if node.get("memory_bytes") is not None:
            ram.append({"numa_node": node["node"], "size_kb": node["memory_bytes"] // 1024})
        for thread in node.get("cpus") or []:
            core_id = root.read_int(f"/sys/devices/system/cpu/cpu{thread}/topology/core_id")
            if core_id is None:
                continue
            entry = cores.setdefault(
                (node["node"], core_id), {"cpu": core_id, "numa_node": node["node"], "thread_siblings": []}
            )
            entry["thread_siblings"].append(thread)
    cpus = [cores[key] for key in sorted(cores)]
    for entry in cpus:
        entry["thread_siblings"].sort()
    nic_list = [
        {"name": nic["name"], "numa_node": nic["numa_node"] if nic["numa_node"] is not None else -1}
        for nic in sorted(nics, key=lambda n: n["name"])
        if nic.get("pci_address")
    ]
    gpu_list = [
        {"pci_address": g["pci_address"], "numa_node": g["numa_node"], "name": g["name"]}
        for g in sorted(gpus, key=lambda g: g["pci_address"])
    ]
    return {"ram": ram, "cpus": cpus, "nics": nic_list, "gpus": gpu_list}


def kfd_properties(text: str | None) -> dict[str, int]:
    """Parse a KFD 'name value' properties file into integers (non-integers are skipped)."""
    props: dict[str, int] = {}
    for line in (text or "").splitlines():
        name, _, value = line.strip().partition(" ")
        try:
            props[name] = int(value.strip())
        except ValueError:
            continue
    return props


def kfd_links(root: Root) -> list[dict]:
    """Return AMD GPU-to-GPU links from the KFD topology: [{'from', 'to', 'type', 'weight'}] by KFD node."""
    links = []
    for node in root.listdir(KFD_NODES, optional=True):
        if not node.isdigit():
            continue
        base = f"{KFD_NODES}/{node}/io_links"
        for link in root.listdir(base, optional=True):
            props = kfd_properties(root.read(f"{base}/{link}/properties", optional=True))
            if "node_from" not in props or "node_to" not in props:
                continue
            links.append(
                {
                    "from": props["node_from"],
                    "to": props["node_to"],
                    "type": KFD_LINK_TYPES.get(props.get("type", -1), str(props.get("type"))),
                    "weight": props.get("weight"),
                }
            )
    return sorted(links, key=lambda x: (x["from"], x["to"]))
