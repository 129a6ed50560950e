"""Block devices: every physical disk in /sys/block, enriched from the udev database."""

from __future__ import annotations

import os
import re

from agent.inventory import devpath, udev
from agent.inventory.base import Root
from agent.inventory.model import Disk

BLOCK = "/sys/block"
_VIRTUAL = ("loop", "ram", "zram", "nbd", "sr", "fd")
_RAID = ("md", "dm-")
_DEVNUM_RE = re.compile(r"^[0-9]+:[0-9]+$")
_HCTL_RE = re.compile(r"^[0-9]+:[0-9]+:[0-9]+:[0-9]+$")
_NVME_CTRL_RE = re.compile(r"^nvme\d+$")
_NVME_HIDDEN_RE = re.compile(r"^nvme\d+c\d+n\d+$")  # a multipath path, not a disk


def _skipped(name: str, include_md: bool) -> bool:
    if name.startswith(_VIRTUAL) or _NVME_HIDDEN_RE.match(name):
        return True
    return name.startswith(_RAID) and not include_md


def wwn_from_wwid(wwid: str | None) -> tuple[str | None, str | None, str | None]:
    """Split a kernel wwid into udev's (ID_WWN, ID_WWN_WITH_EXTENSION, ID_WWN_VENDOR_EXTENSION)."""
    if not wwid:
        return None, None, None
    kind, _, value = wwid.strip().partition(".")
    if kind == "naa" and re.fullmatch(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}", value):
        value = value.lower()
        if len(value) == 32:  # NAA 6: the 64-bit WWN plus a 64-bit vendor extension
            return "0x" + value[:16], "0x" + value, "0x" + value[16:]
        return "0x" + value, "0x" + value, None
    if kind in ("eui", "nvme", "uuid"):
        return wwid.strip(), wwid.strip(), None
    return None, None, None


def _vpd_serial(root: Root, rel: str) -> str | None:
    """Read the unit serial number from a SCSI VPD page 0x80 (header of 4 bytes, then ASCII)."""
    data = root.read_bytes(rel, optional=True)
    if not data or len(data) < 4 or data[1] != 0x80:
        return None
    return data[4 : 4 + data[3]].decode("latin-1").strip() or None


def _transport(name: str, device: str, vendor: str | None, hctl: str | None) -> str | None:
    """Name the transport from where the device sits in the sysfs tree."""
    parts = device.split("/")
    if name.startswith("nvme") or "nvme" in parts or any(p.startswith("nvme-subsys") for p in parts):
        return "nvme"
    if name.startswith("mmcblk") or any(p.startswith("mmc") for p in parts):
        return "mmc"
    if hctl:
        if any(p.startswith("usb") for p in parts):
            return "usb"
        if any(p.startswith(("end_device-", "expander-", "port-")) for p in parts):
            return "sas"
        if (vendor or "").strip() == "ATA" or any(re.fullmatch(r"ata\d+", p) for p in parts):
            return "sata"
        if any(p.startswith("virtio") for p in parts):
            return "virtio"
        return "scsi"
    if any(p.startswith("virtio") for p in parts):
        return "virtio"
    return None


def _nvme_controller(root: Root, device: str) -> str:
    """Return the controller of an NVMe namespace (the first path of a multipath subsystem)."""
    if os.path.basename(device).startswith("nvme-subsys"):
        for entry in root.listdir(device, optional=True):
            if _NVME_CTRL_RE.match(entry):
                return root.realpath(f"{device}/{entry}") or device
    return device


def _read_disk(root: Root, name: str, device: str | None) -> Disk:
    base = f"{BLOCK}/{name}"
    dev = root.read(f"{base}/dev")
    if dev is not None and not _DEVNUM_RE.match(dev):
        root.note(f"{base}/dev", f"garbled: expected major:minor, got {dev[:40]!r}")
        dev = None
    record = udev.read_udev(root, "b" + dev) if dev else None
    props = record["properties"] if record else {}
    size = root.read_int(f"{base}/size")
    nvme = None
    ctrl = device
    vendor = model = serial = wwid = hctl = None
    if device:
        if name.startswith("nvme"):
            ctrl = _nvme_controller(root, device)
            nvme = {
                "model": root.read(f"{ctrl}/model", optional=True) or None,
                "serial": root.read(f"{ctrl}/serial", optional=True) or None,
                "firmware": root.read(f"{ctrl}/firmware_rev", optional=True) or None,
                "controller": os.path.basename(ctrl),
            }
            model, serial = nvme["model"], nvme["serial"]
            wwid = root.read(f"{base}/wwid", optional=True)
        else:
            vendor = root.read(f"{device}/vendor", optional=True) or None
            model = root.read(f"{device}/model", optional=True) or None
            wwid = root.read(f"{device}/wwid", optional=True)
            if _HCTL_RE.match(os.path.basename(device)):
                hctl = os.path.basename(device)
                serial = _vpd_serial(root, f"{device}/vpd_pg80")
    serial = serial or root.read(f"{base}/serial", optional=True) or None
    wwn, wwn_ext, wwn_vendor = wwn_from_wwid(wwid)
    pci = devpath.pci_function_path(ctrl)
    rotational = root.read_int(f"{base}/queue/rotational", optional=True)
    removable = root.read_int(f"{base}/removable", optional=True)
    return {
        "name": "/dev/" + name,
        "kernel_name": name,
        "model": props.get("ID_MODEL") or model,
        "vendor": props.get("ID_VENDOR") or vendor,
        "serial": props.get("ID_SERIAL_SHORT") or props.get("ID_SERIAL") or serial,
        "wwn": props.get("ID_WWN") or wwn,
        "wwn_with_extension": props.get("ID_WWN_WITH_EXTENSION") or wwn_ext,
        "wwn_vendor_extension": props.get("ID_WWN_VENDOR_EXTENSION") or wwn_vendor,
        "size": size * 512 if size is not None else None,
        "rotational": bool(rotational) if rotational is not None else None,
        "hctl": hctl,
        "by_path": "/dev/disk/by-path/" + props["ID_PATH"] if props.get("ID_PATH") else None,
        "logical_sector_size": root.read_int(f"{base}/queue/logical_block_size", optional=True),
        "physical_sector_size": root.read_int(f"{base}/queue/physical_block_size", optional=True),
        "transport": _transport(name, ctrl, vendor, hctl) if ctrl else None,
        "removable": bool(removable) if removable is not None else None,
        "pci_address": os.path.basename(pci) if pci else None,
        "numa_node": devpath.numa_node(root, pci),
        "nvme": nvme,
    }


def read_disks(root: Root, include_md: bool = False) -> list[Disk]:
    """List the physical disks (md/dm RAID devices too with ``include_md``), sorted by name."""
    disks: list[Disk] = []
    for name in root.listdir(BLOCK):
        if _skipped(name, include_md):
            continue
        device = root.realpath(f"{BLOCK}/{name}/device")
        if device is None and not name.startswith(_RAID):
            # No device link: a software block device, or a partial entry of a real one (kept).
            device = devpath.device_of_entry(root, f"{BLOCK}/{name}", "block")
            if device is None:
                continue
            root.note(
                f"{BLOCK}/{name}/device", f"missing: {name}'s device was taken from its sysfs path {device}"
            )
        disks.append(_read_disk(root, name, device))
    return disks
