"""AMD GPU health from sysfs: amdgpu RAS error counters and XGMI links.

- RAS: amdgpu writes one file per hardware block under the PCI device's ``ras/`` directory,
  ``<block>_err_count`` (``umc``, ``gfx``, ``sdma``, ``mmhub``, ``xgmi_wafl``, ...), each holding
  ``ue: N`` (uncorrectable) and ``ce: N`` (correctable) lines, newer kernels also ``de: N``
  (deferred). No ``ras/`` directory means the GPU or kernel has no RAS: the field stays null
  and is named in ``not_supported``.
- XGMI: the KFD topology's ``io_links`` of type 11 from the GPU's node to its peers; a KFD
  node is matched to its PCI function by ``domain`` and ``location_id`` (bus << 8 | devfn).
"""

from __future__ import annotations

from agent.inventory.base import Root
from agent.inventory.model import GpuHealth, XgmiLink
from agent.inventory.topology import KFD_NODES, kfd_properties

XGMI = 11


def read_ras(root: Root, device_path: str) -> dict | None:
    """Return {block: {'ue': n, 'ce': n}} from ``<device>/ras/*_err_count``; None when there is no ras/."""
    ras = f"{device_path}/ras"
    if not root.exists(ras):
        return None
    blocks: dict[str, dict | None] = {}
    for name in root.listdir(ras):
        if not name.endswith("_err_count"):
            continue
        rel = f"{ras}/{name}"
        blocks[name[: -len("_err_count")]] = _counts(root, rel)
    return blocks


def _counts(root: Root, rel: str) -> dict | None:
    """Parse 'ue: N' / 'ce: N' lines; None (and an error) when a line is garbled or ue/ce is missing."""
    text = root.read(rel)
    if text is None:
        return None
    counts: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        try:
            number = int(value.strip()) if sep else -1
        except ValueError:
            number = -1
        if number < 0 or not key.strip().isalpha():
            root.note(rel, f"garbled: expected 'ue: N' / 'ce: N' lines, got {line[:40]!r}")
            return None
        counts[key.strip().lower()] = number
    if not {"ue", "ce"} <= set(counts):
        root.note(rel, f"garbled: expected 'ue: N' and 'ce: N', got {text[:40]!r}")
        return None
    return counts


def kfd_gpu_nodes(root: Root) -> dict[int, str]:
    """Map KFD GPU node numbers to PCI addresses ('0000:03:00.0'), from domain and location_id."""
    cached = root.cache.get("kfd_gpu_nodes")
    if cached is not None:
        return cached
    nodes: dict[int, str] = {}
    for node in root.listdir(KFD_NODES, optional=True):
        if not node.isdigit():
            continue
        props = kfd_properties(root.read(f"{KFD_NODES}/{node}/properties", optional=True))
        if props.get("simd_count", 0) <= 0 or "location_id" not in props:
            continue  # a CPU node
        loc, domain = props["location_id"], props.get("domain", 0)
        nodes[int(node)] = f"{domain:04x}:{loc >> 8:02x}:{(loc >> 3) & 0x1F:02x}.{loc & 7}"
    root.cache["kfd_gpu_nodes"] = nodes
    return nodes


def read_xgmi_links(root: Root, pci_address: str) -> list[XgmiLink] | None:
    """The GPU's XGMI links from the KFD topology; None when the GPU has no KFD node."""
    nodes = kfd_gpu_nodes(root)
    mine = [n for n, address in nodes.items() if address == pci_address]
    if not mine:
        return None
    links: list[XgmiLink] = []
    base = f"{KFD_NODES}/{mine[0]}/io_links"
    for link in root.listdir(base, optional=True):
        props = kfd_properties(root.read(f"{base}/{link}/properties", optional=True))
        if props.get("type") != XGMI or "node_to" not in props:
            continue
        links.append(
            {
                "peer": nodes.get(props["node_to"]),
                "kfd_node": props["node_to"],
                "weight": props.get("weight"),
                "min_bandwidth_mb_s": props.get("min_bandwidth"),
                "max_bandwidth_mb_s": props.get("max_bandwidth"),
            }
        )
    return sorted(links, key=lambda x: x["kfd_node"])


def fill_health(root: Root, device_path: str, pci_address: str, health: GpuHealth) -> None:
    """Read an amdgpu device's RAS counters and XGMI links into ``health`` (in place)."""
    health["ras"] = read_ras(root, device_path)
    if health["ras"] is None:
        health["not_supported"].append("ras")
    health["xgmi_links"] = read_xgmi_links(root, pci_address)
