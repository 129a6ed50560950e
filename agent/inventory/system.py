"""The machine itself: DMI identity, firmware, boot mode, PXE interface, hostname."""

from __future__ import annotations

import re

from agent.inventory.base import Root
from agent.inventory.model import Firmware, System

DMI = "/sys/class/dmi/id"
EFI = "/sys/firmware/efi"
SECURE_BOOT_VAR = EFI + "/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"

_MAC_RE = re.compile(r"^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$")


def read_system(root: Root) -> System:
    """Read the system's DMI identity, firmware, boot facts and hostname."""
    has_dmi = root.exists(DMI)
    if not has_dmi:
        root.note(DMI, "missing: no DMI/SMBIOS data exported by the firmware")

    def dmi(name: str) -> str | None:
        if not has_dmi:
            return None
        return root.read(f"{DMI}/{name}", optional=True) or None

    uuid = dmi("product_uuid")
    chassis_type = root.read_int(f"{DMI}/chassis_type", optional=True) if has_dmi else None
    firmware: Firmware = {
        "vendor": dmi("bios_vendor"),
        "version": dmi("bios_version"),
        "date": dmi("bios_date"),
    }
    cmdline = root.read("/proc/cmdline")
    uefi = root.exists(EFI)
    return {
        "vendor": dmi("sys_vendor"),
        "product": dmi("product_name"),
        "version": dmi("product_version"),
        "serial": dmi("product_serial"),
        "uuid": uuid.lower() if uuid else None,
        "sku": dmi("product_sku"),
        "family": dmi("product_family"),
        "board_vendor": dmi("board_vendor"),
        "board_product": dmi("board_name"),
        "chassis_type": chassis_type,
        "firmware": firmware,
        "boot_mode": "uefi" if uefi else "bios",
        "secure_boot": _secure_boot(root) if uefi else None,
        "pxe_interface": _bootif(root, cmdline),
        "hostname": _hostname(root),
        "kernel_cmdline": cmdline,
        "bmc_address": None,
        "bmc_v6address": None,
    }


def _secure_boot(root: Root) -> bool | None:
    """Read the SecureBoot EFI variable: 4 attribute bytes, then the value byte."""
    data = root.read_bytes(SECURE_BOOT_VAR, optional=True)
    if data is None:
        return None
    if len(data) < 5 or data[4] not in (0, 1):
        root.note(
            SECURE_BOOT_VAR, f"garbled: expected 4 attribute bytes and a 0/1 value, got {data[:8].hex()}"
        )
        return None
    return data[4] == 1


def parse_bootif(value: str) -> str | None:
    """Turn a BOOTIF value into 'aa:bb:...'; None if invalid.

    PXELINUX writes the ARP hardware type first ('01-aa-bb-cc-dd-ee-ff', 01 = Ethernet);
    iPXE scripts often pass the bare MAC with colons ('aa:bb:cc:dd:ee:ff').
    """
    value = value.strip().lower()
    if ":" in value:
        mac = value
    else:
        octets = value.split("-")
        if len(octets) != 7 or octets[0] != "01":
            return None
        mac = ":".join(octets[1:])
    return mac if _MAC_RE.match(mac) else None


def _bootif(root: Root, cmdline: str | None) -> str | None:
    """Find the PXE interface's MAC in BOOTIF= on the kernel command line."""
    if not cmdline:
        return None
    for word in cmdline.split():
        if word.startswith("BOOTIF="):
            value = word[len("BOOTIF=") :]
            mac = parse_bootif(value)
            if mac is None:
                root.note("/proc/cmdline", f"garbled: BOOTIF={value[:40]!r} is not a MAC address")
            return mac
    return None


def _hostname(root: Root) -> str | None:
    """Read the hostname from the kernel, else from /etc/hostname."""
    name = root.read("/proc/sys/kernel/hostname", optional=True)
    if not name:
        text = root.read("/etc/hostname", optional=True)
        name = text.split()[0] if text and text.split() else None
        if name is None:
            root.note("/etc/hostname", "missing: no hostname in /proc/sys/kernel/hostname or /etc/hostname")
    return name or None
