"""Kiln's inventory in the shape ironic-python-agent 13 sends (the ``ironic`` format).

The top level carries exactly IPA 13's inventory keys (``interfaces``, ``cpu``, ``disks``,
``memory``, ``bmc_address``, ``bmc_v6address``, ``system_vendor``, ``boot``, ``hostname``),
with IPA's field names, types and units, so Ironic's inspection code reads it unchanged.
Beside them stand keys IPA has no field for: ``gpus``, ``nvswitches``, ``lldp``,
``numa_topology`` and ``pci_devices`` (the last two in the shape of IPA's optional
collectors), and ``kiln``: Kiln's own records for every section the IPA keys squeeze
(system, cpu, memory, disks, nics, pci_devices, errors, and kernel_log where the
inventory has one), so nothing is lost. Each GPU's ``health`` travels inside ``gpus`` as it is.

Where IPA reads something Kiln cannot (lshw's maximum NIC speed, biosdevname, the
virtio bus name of a NIC), the field keeps IPA's type and carries Kiln's nearest fact or
null; tests/fixtures/ipa/README.md lists those differences.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

#: The keys IPA 13's ``list_hardware_info()`` always returns (``bmc_mac`` only when found).
IPA_KEYS = (
    "interfaces",
    "cpu",
    "disks",
    "memory",
    "bmc_address",
    "bmc_v6address",
    "system_vendor",
    "boot",
    "hostname",
)

#: Keys of ours beside IPA's.
EXTRA_KEYS = ("gpus", "nvswitches", "lldp", "numa_topology", "pci_devices", "kiln")

#: Version of the ``kiln`` block's layout.
FORMAT_VERSION = 1

# lsblk (util-linux 2.37/2.38, as in IPA ramdisks) names these transports; it reports
# none for virtio, generic SCSI and MMC disks.
_LSBLK_TRANSPORTS = frozenset({"nvme", "sata", "sas", "usb", "iscsi", "fc", "spi", "ata"})
_VIRTIO_NET_DEVICE = "0x0001"  # virtio device id of a network device, as device/device prints it
_GIB = 1 << 30


def to_ironic(inv: dict) -> dict:
    """Return the IPA 13 inventory for ``inv`` (Kiln's ``json`` format) plus Kiln's extra keys."""
    system = inv.get("system") or {}
    out: dict[str, Any] = {
        "interfaces": [i for i in (_interface(n, inv.get("lldp") or {}) for n in inv.get("nics") or []) if i],
        "cpu": _cpu(inv.get("cpu") or {}),
        "disks": [d for d in (_disk(x) for x in inv.get("disks") or []) if d],
        "memory": _memory(inv.get("memory") or {}),
        "bmc_address": system.get("bmc_address"),
        "bmc_v6address": system.get("bmc_v6address"),
        "system_vendor": _system_vendor(system),
        "boot": _boot(system),
        "hostname": system.get("hostname") or "",
    }
    out["gpus"] = list(inv.get("gpus") or [])
    out["nvswitches"] = list(inv.get("nvswitches") or [])
    out["lldp"] = dict(inv.get("lldp") or {})
    out["numa_topology"] = dict(inv.get("numa_topology") or {"ram": [], "cpus": [], "nics": [], "gpus": []})
    out["pci_devices"] = [ipa_pci_device(p) for p in inv.get("pci_devices") or []]
    out["kiln"] = {
        "format_version": FORMAT_VERSION,
        "system": system,
        "cpu": inv.get("cpu"),
        "memory": inv.get("memory"),
        "disks": list(inv.get("disks") or []),
        "nics": list(inv.get("nics") or []),
        "pci_devices": list(inv.get("pci_devices") or []),
        "errors": list(inv.get("errors") or []),
    }
    if inv.get("kernel_log") is not None:
        out["kiln"]["kernel_log"] = inv["kernel_log"]
    return out


def ipa_part(doc: dict) -> dict:
    """Return only the keys IPA 13 itself sends (plus ``bmc_mac`` when present)."""
    keys = IPA_KEYS + (("bmc_mac",) if "bmc_mac" in doc else ())
    return {k: doc[k] for k in keys if k in doc}


def from_ironic(doc: dict) -> dict:
    """Rebuild Kiln's ``json`` inventory from an ``ironic`` document made by :func:`to_ironic`."""
    kiln = doc.get("kiln")
    if not isinstance(kiln, dict):
        raise ValueError("not a Kiln ironic document: the 'kiln' key is missing or not an object")
    inv = {
        "system": kiln["system"],
        "cpu": kiln["cpu"],
        "memory": kiln["memory"],
        "disks": kiln["disks"],
        "nics": kiln["nics"],
        "gpus": doc.get("gpus", []),
        "nvswitches": doc.get("nvswitches", []),
        "pci_devices": kiln["pci_devices"],
        "numa_topology": doc.get("numa_topology", {}),
        "lldp": doc.get("lldp", {}),
        "errors": kiln["errors"],
    }
    if "kernel_log" in kiln:
        inv["kernel_log"] = kiln["kernel_log"]
    return inv


# -- sections -------------------------------------------------------------


def _interface(nic: dict, lldp: dict) -> dict | None:
    """One entry of IPA's ``interfaces``; None where IPA would skip the interface."""
    mac = (nic.get("mac_address") or "").lower() or None
    # IPA drops interfaces without a MAC and, since 2023, locally administered 'fa:' ones.
    if mac is None or mac.startswith("fa:"):
        return None
    name = nic["name"]
    virtio = (nic.get("driver") or "") == "virtio_net"
    return {
        "name": name,
        "mac_address": mac,
        "ipv4_address": (nic.get("ipv4_addresses") or [None])[0],
        "ipv6_address": _first_ipv6(name, nic.get("ipv6_addresses") or []),
        "has_carrier": bool(nic.get("carrier")),
        "lldp": _ipa_lldp(_lldp_raw(lldp.get(name))),
        # IPA prints device/vendor and device/device; for virtio that is the virtio device
        # (vendor = the PCI subsystem vendor, 0x1af4 on every hypervisor we know; device 1 = net).
        "vendor": nic.get("vendor_id"),
        "product": _VIRTIO_NET_DEVICE if virtio else nic.get("device_id"),
        "client_id": None,
        "biosdevname": None,
        "speed_mbps": nic.get("speed_mbps"),
        "pci_address": nic.get("pci_address"),
        "driver": nic.get("driver"),
    }


def _first_ipv6(name: str, addresses: list[str]) -> str | None:
    """Pick the address IPA's psutil call returns first: the kernel lists wider scopes first."""

    def scope(addr: str) -> int:
        try:
            ip = ipaddress.IPv6Address(addr.split("%", 1)[0])
        except ValueError:
            return 3
        return 2 if ip.is_link_local else 1 if ip.is_site_local else 0

    if not addresses:
        return None
    best = min(addresses, key=scope)  # min() is stable: the first of the widest scope
    if scope(best) == 2 and "%" not in best:
        best = f"{best}%{name}"  # psutil appends the zone to link-local addresses
    return best


def _lldp_raw(entry: Any) -> Any:
    """The TLVs of one link's LLDP entry: the "raw" list of a parsed entry, or a bare TLV list as is."""
    return entry.get("raw") if isinstance(entry, dict) else entry


def _ipa_lldp(value: Any) -> list | None:
    """Pass through LLDP TLVs already in IPA's [[type, hex], ...] shape; None otherwise."""
    if (
        isinstance(value, list)
        and value
        and all(
            isinstance(t, list | tuple) and len(t) == 2 and isinstance(t[0], int) and isinstance(t[1], str)
            for t in value
        )
    ):
        return [[t[0], t[1]] for t in value]
    return None


def _cpu(cpu: dict) -> dict:
    """IPA's ``cpu``: lscpu's strings, with frequency as lscpu prints 'CPU max MHz'."""
    mhz = cpu.get("frequency_mhz")
    return {
        "model_name": cpu.get("model_name") or "",
        "frequency": f"{mhz:.4f}" if isinstance(mhz, int | float) else "",
        "count": int(cpu.get("count") or 0),
        "architecture": cpu.get("architecture") or "",
        "flags": list(cpu.get("flags") or []),
        "socket_count": int(cpu.get("sockets") or 0),
    }


def _disk(disk: dict) -> dict | None:
    """One entry of IPA's ``disks``; None for the empty devices IPA leaves out."""
    kname = disk.get("kernel_name") or (disk.get("name") or "").rsplit("/", 1)[-1]
    size = disk.get("size")
    if not size or kname.startswith(("ram", "zram", "fd")):
        return None
    transport = disk.get("transport")
    return {
        "name": disk.get("name") or f"/dev/{kname}",
        "model": disk.get("model"),
        "size": int(size),
        "rotational": bool(disk.get("rotational")),
        "wwn": disk.get("wwn"),
        "serial": disk.get("serial"),
        # IPA reads /sys/class/block/X/device/vendor: NVMe controllers have none.
        "vendor": None if transport == "nvme" else disk.get("vendor"),
        "wwn_with_extension": disk.get("wwn_with_extension"),
        "wwn_vendor_extension": disk.get("wwn_vendor_extension"),
        "hctl": disk.get("hctl"),
        "by_path": disk.get("by_path"),
        "logical_sectors": disk.get("logical_sector_size"),
        "physical_sectors": disk.get("physical_sector_size"),
        "tran": transport if transport in _LSBLK_TRANSPORTS else None,
    }


def _memory(memory: dict) -> dict:
    """IPA's ``memory``: total in bytes, physical_mb in MiB.

    IPA takes physical_mb from lshw, which falls back to the online memory blocks when
    there is no SMBIOS; rounding MemTotal up to whole GiB gives the same figure there.
    """
    total = memory.get("total_bytes")
    physical = memory.get("physical_mb")
    if physical is None and total:
        physical = math.ceil(total / _GIB) * 1024
    return {"total": total, "physical_mb": physical}


def _system_vendor(system: dict) -> dict:
    """IPA's ``system_vendor`` as lshw fills it: '' for anything unknown, never null."""
    product = system.get("product") or ""
    sku = system.get("sku")
    if product and sku:
        product = f"{product} ({sku})"  # lshw appends the SMBIOS SKU to the product name
    firmware = system.get("firmware") or {}
    return {
        "product_name": product,
        "serial_number": system.get("serial") or "",
        "manufacturer": system.get("vendor") or "",
        "firmware": {
            "vendor": firmware.get("vendor") or "",
            "version": firmware.get("version") or "",
            "build_date": firmware.get("date") or "",
        },
    }


def _boot(system: dict) -> dict:
    """IPA's ``boot``: pxe_interface is BOOTIF= exactly as on the kernel command line."""
    return {
        "current_boot_mode": system.get("boot_mode") or "bios",
        "pxe_interface": _raw_bootif(system.get("kernel_cmdline")) or system.get("pxe_interface"),
    }


def _raw_bootif(cmdline: str | None) -> str | None:
    """Return the last BOOTIF= value on the command line, as IPA's parameter dict keeps it."""
    value = None
    for word in (cmdline or "").split():
        key, sep, rest = word.partition("=")
        if sep and key == "BOOTIF":
            value = rest
    return value


def ipa_pci_device(dev: dict) -> dict:
    """One entry of IPA's ``pci-devices`` collector: hex ids without 0x, numa_node_id a string."""

    def bare(value: str | None) -> str | None:
        return value[2:] if isinstance(value, str) and value.lower().startswith("0x") else value

    numa = dev.get("numa_node")
    return {
        "vendor_id": bare(dev.get("vendor_id")),
        "product_id": bare(dev.get("device_id")),
        "class": bare(dev.get("class_code")),
        "revision": bare(dev.get("revision")),
        "bus": dev.get("address"),
        "numa_node_id": str(numa) if numa is not None else "-1",
    }
