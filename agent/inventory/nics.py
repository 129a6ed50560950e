"""Network interfaces backed by a device: MACs, link state, driver, PCI function, InfiniBand GUID."""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import socket
import struct

from agent.inventory import devpath, netaddr
from agent.inventory.base import Root
from agent.inventory.model import Nic

NET = "/sys/class/net"
INFINIBAND = "/sys/class/infiniband"
ARPHRD_INFINIBAND = 32
_MAC_RE = re.compile(r"^[0-9a-f]{2}(?::[0-9a-f]{2})+$")
_SPEED_UNKNOWN = (65535, 4294967295)  # drivers that print SPEED_UNKNOWN unsigned

SIOCETHTOOL = 0x8946
ETHTOOL_GPERMADDR = 0x20


def permanent_mac_ioctl(name: str) -> str | None:
    """Ask the live kernel for an interface's permanent MAC (ETHTOOL_GPERMADDR); None if it cannot say."""
    buf = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_GPERMADDR, 32) + bytes(32))
    ifreq = struct.pack("16sP", name.encode()[:15], ctypes.addressof(buf)).ljust(40, b"\0")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    except OSError:
        return None
    size = struct.unpack_from("I", buf.raw, 4)[0]
    raw = buf.raw[8 : 8 + min(size, 32)]
    if not raw or not any(raw):
        return None
    return ":".join(f"{b:02x}" for b in raw)


def _mac(root: Root, rel: str, *, optional: bool = True) -> str | None:
    text = root.read(rel, optional=optional)
    if text is None:
        return None
    mac = text.lower()
    if not _MAC_RE.match(mac):
        root.note(rel, f"garbled: {text[:64]!r} is not a hardware address")
        return None
    return mac


def _pci_function(device: str) -> str | None:
    """Return the PCI function of a netdev's device: itself, or a virtio device's parent."""
    name = os.path.basename(device)
    if devpath.is_pci_address(name):
        return device
    parent = os.path.dirname(device)
    if name.startswith("virtio") and devpath.is_pci_address(os.path.basename(parent)):
        return parent
    return None


def _infiniband_guids(root: Root) -> dict[str, str]:
    """Map each InfiniBand device's PCI function path to its node GUID."""
    guids: dict[str, str] = {}
    for dev in root.listdir(INFINIBAND, optional=True):
        target = root.realpath(f"{INFINIBAND}/{dev}/device")
        guid = root.read(f"{INFINIBAND}/{dev}/node_guid", optional=True)
        if target and guid:
            guids.setdefault(target, guid.lower())
    return guids


def _speed(root: Root, rel: str) -> int | None:
    """Read the negotiated speed; -1, EINVAL (link down) and unknown markers give None."""
    speed = root.read_int(rel, optional=True)
    if speed is None or speed <= 0 or speed in _SPEED_UNKNOWN:
        return None
    return speed


def _read_nic(root: Root, name: str, device: str, addresses: netaddr.Addresses, guids: dict[str, str]) -> Nic:
    base = f"{NET}/{name}"
    current = _mac(root, f"{base}/address", optional=False)  # every NIC has one: a missing one is noted
    permanent = _mac(root, f"{base}/bonding_slave/perm_hwaddr")
    if permanent is None and root.path == "/":
        assign = root.read_int(f"{base}/addr_assign_type", optional=True)
        if assign not in (None, 0):  # random, stolen or set: the address is not the burnt-in one
            permanent = permanent_mac_ioctl(name)
    pci = _pci_function(device)
    carrier = root.read_int(f"{base}/carrier", optional=True)
    link_type = root.read_int(f"{base}/type", optional=True)
    ipv4, ipv6 = addresses.get(name, ([], []))
    return {
        "name": name,
        "mac_address": permanent or current,
        "current_mac_address": current,
        "ipv4_addresses": list(ipv4),
        "ipv6_addresses": sorted(ipv6),  # one order, live or captured
        "carrier": bool(carrier) if carrier is not None else None,
        "operstate": root.read(f"{base}/operstate", optional=True) or None,
        "speed_mbps": _speed(root, f"{base}/speed"),
        "mtu": root.read_int(f"{base}/mtu", optional=True),
        "driver": root.readlink_name(f"{device}/driver"),
        "pci_address": os.path.basename(pci) if pci else None,
        "vendor_id": devpath.pci_id(root, f"{pci}/vendor") if pci else None,
        "device_id": devpath.pci_id(root, f"{pci}/device") if pci else None,
        "numa_node": devpath.numa_node(root, pci),
        "sriov_totalvfs": root.read_int(f"{pci}/sriov_totalvfs", optional=True) if pci else None,
        "sriov_numvfs": root.read_int(f"{pci}/sriov_numvfs", optional=True) if pci else None,
        # RoCE ports have an RDMA node GUID too; only an InfiniBand link is identified by it.
        "infiniband_guid": guids.get(pci) if pci and link_type == ARPHRD_INFINIBAND else None,
        "link_type": "infiniband" if link_type == ARPHRD_INFINIBAND else "ethernet",
        "is_virtual_function": root.exists(f"{pci or device}/physfn"),
    }


def read_nics(root: Root) -> list[Nic]:
    """List the interfaces that have a backing device (no lo, bridges, bonds, veths), sorted by name."""
    found = []
    for name in root.listdir(NET):
        device = root.realpath(f"{NET}/{name}/device")
        if device is None:
            # No device link: a software interface, or a partial entry of a real NIC (kept).
            device = devpath.device_of_entry(root, f"{NET}/{name}", "net")
            if device is None:
                continue
            root.note(
                f"{NET}/{name}/device", f"missing: {name}'s device was taken from its sysfs path {device}"
            )
        found.append((name, device))
    if not found:
        return []
    addresses = netaddr.read_addresses(root)
    guids = _infiniband_guids(root)
    return [_read_nic(root, name, device, addresses, guids) for name, device in found]
