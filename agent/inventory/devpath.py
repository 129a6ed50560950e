"""Facts read off a device's resolved sysfs path: its PCI function and NUMA node."""

from __future__ import annotations

import os
import re

from agent.inventory.base import Root

BDF_RE = re.compile(r"^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def is_pci_address(name: str) -> bool:
    """Say whether a path component is a full PCI address ('0000:18:00.0')."""
    return bool(BDF_RE.match(name))


def pci_function_path(devpath: str | None) -> str | None:
    """Return the deepest PCI function directory on a resolved sysfs path, or None."""
    if not devpath:
        return None
    parts = devpath.split("/")
    for i in range(len(parts) - 1, -1, -1):
        if BDF_RE.match(parts[i]):
            return "/".join(parts[: i + 1])
    return None


def pci_address(devpath: str | None) -> str | None:
    """Return the address of the deepest PCI function on a resolved sysfs path."""
    path = pci_function_path(devpath)
    return path.rsplit("/", 1)[-1] if path else None


def numa_node(root: Root, pci_path: str | None) -> int | None:
    """Read a PCI function's NUMA node; -1 (no affinity) and unreadable give None."""
    if not pci_path:
        return None
    node = root.read_int(pci_path + "/numa_node", optional=True)
    return node if node is not None and node >= 0 else None


def pci_id(root: Root, rel: str) -> str | None:
    """Read a PCI id attribute ('0x15b3') and normalise it to lower-case 4-digit hex."""
    value = root.read_hex(rel, optional=True)
    if value is None:
        return None
    if not 0 <= value <= 0xFFFF:
        root.note(rel, f"garbled: PCI id {value:#x} out of range")
        return None
    return f"0x{value:04x}"


def device_of_entry(root: Root, entry: str, class_dir: str) -> str | None:
    """The device a class entry (``/sys/block/nvme0n1``) sits under when its ``device`` link is missing.

    A class entry resolves to ``.../<device>/<class_dir>/<name>`` (``.../nvme0/nvme0n1`` for NVMe):
    the directory above is the device. None for software devices, which live under
    ``/sys/devices/virtual`` (an NVMe multipath subsystem's namespace too, whose device is the subsystem).
    """
    real = root.realpath(entry)
    if real is None:
        return None
    parent = os.path.dirname(real)
    if os.path.basename(parent) == class_dir:
        parent = os.path.dirname(parent)
    if real.startswith("/sys/devices/virtual/") and not real.startswith(
        "/sys/devices/virtual/nvme-subsystem/"
    ):
        return None
    return parent if parent.startswith("/sys/devices/") else None
