"""What Ironic's inspection keeps in plugin_data for an ironic-format inventory: every interface,
the valid ones (a MAC and an IP address, as Ironic's validate-interfaces hook keeps by default),
their MACs, the PXE interface, and the root disk Ironic would pick (the smallest disk of at least
4 GiB)."""

from __future__ import annotations

from typing import Any

_ROOT_DISK_MIN = 4 << 30


def _bootif_mac(pxe_interface: str | None) -> str | None:
    """The MAC of BOOTIF= (01-aa-bb-... as PXELINUX writes it, or a plain MAC)."""
    if not pxe_interface:
        return None
    value = pxe_interface.lower()
    if value.startswith("01-"):
        value = value[3:]
    return value.replace("-", ":")


def ironic_plugin_data(inventory: dict[str, Any]) -> dict[str, Any]:
    """plugin_data keys Ironic's inspection hooks derive from ``inventory`` (the ironic format)."""
    pxe_mac = _bootif_mac((inventory.get("boot") or {}).get("pxe_interface"))
    every: dict[str, dict[str, Any]] = {}
    for iface in inventory.get("interfaces") or []:
        every[iface["name"]] = {
            "ip": iface.get("ipv4_address") or iface.get("ipv6_address"),
            "mac": iface.get("mac_address"),
            "client_id": iface.get("client_id"),
            "pxe_enabled": pxe_mac is not None and iface.get("mac_address") == pxe_mac,
        }
    valid = {name: i for name, i in every.items() if i["mac"] and i["ip"]}
    disks = [d for d in inventory.get("disks") or [] if (d.get("size") or 0) >= _ROOT_DISK_MIN]
    root = min(disks, key=lambda d: d["size"]) if disks else None
    return {
        "all_interfaces": every,
        "valid_interfaces": valid,
        "macs": sorted(i["mac"] for i in valid.values()),
        "boot_interface": pxe_mac,
        "root_disk": root,
    }
