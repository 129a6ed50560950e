"""MAC addresses: their one spelling, the NIC MACs that name a node, and PXE's BOOTIF.

The agent (its lookup) and the conductor (lookup, inventory reports, ports) pick a node's MACs
the same way, so both use this module; it needs nothing of Kiln but ``exception``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from agent.common import exception

#: All-zero and broadcast: a NIC reports these when it has no address of its own; never a node's.
ZERO_MACS = frozenset({"00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"})
_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
# PXELINUX's ipappend 2 and iPXE's ${mac:hexhyp} with the ARP type first (01 = Ethernet).
_BOOTIF = re.compile(r"01-(?:[0-9a-f]{2}-){5}[0-9a-f]{2}")


def normalize_mac(mac: Any) -> str:
    """Return ``mac`` lower-cased with colons; InvalidParameterValue naming it when it is no MAC."""
    if isinstance(mac, str):
        candidate = mac.strip().lower().replace("-", ":")
        if _MAC.fullmatch(candidate):
            return candidate
    raise exception.InvalidParameterValue(
        err=f"Invalid MAC address {mac!r}: expected six hex octets such as 52:54:00:12:34:56."
    )


def valid_macs(values: Iterable[Any] | None) -> list[str]:
    """Valid, normalized MACs of ``values`` (others and ZERO_MACS dropped), in order, without duplicates."""
    found: list[str] = []
    for value in values or []:
        try:
            mac = normalize_mac(value)
        except exception.InvalidParameterValue:
            continue
        if mac not in found and mac not in ZERO_MACS:
            found.append(mac)
    return found


def parse_bootif(value: Any) -> str | None:
    """A BOOTIF MAC as PXE passes it ("01-aa-bb-..") or plain; None when it is no MAC."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().lower()
    if _BOOTIF.fullmatch(text):
        text = text[3:]
    found = valid_macs([text])
    return found[0] if found else None


def _nics(inventory: dict) -> list[dict]:
    return [n for n in inventory.get("nics") or [] if isinstance(n, dict)]


def device_nic_macs(inventory: dict) -> list[str]:
    """MACs of the node's physical NICs (PCI functions, not VFs) in the inventory, in order."""
    return valid_macs(
        n.get("mac_address")
        for n in _nics(inventory)
        if n.get("pci_address") and not n.get("is_virtual_function")
    )


def lookup_macs(inventory: dict) -> list[str]:
    """The MACs an agent looks its node up by: of its device NICs; every NIC's when none has one. Sorted."""
    return sorted(device_nic_macs(inventory) or valid_macs(n.get("mac_address") for n in _nics(inventory)))
