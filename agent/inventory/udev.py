"""The udev database (/run/udev/data) read as plain files under a root.

pyudev always reads the live ``/sys`` and ``/run``; a reader that takes a root
path must parse the database itself.  Each record holds ``E:KEY=VALUE``
properties and ``S:`` symlinks (relative to /dev).
"""

from __future__ import annotations

from typing import TypedDict

from agent.inventory.base import Root

UDEV_DATA = "/run/udev/data"


class UdevRecord(TypedDict):
    properties: dict[str, str]
    links: list[str]


def parse_udev_record(text: str) -> UdevRecord:
    """Parse one udev database record into its properties and /dev links."""
    props: dict[str, str] = {}
    links: list[str] = []
    for line in text.splitlines():
        kind, sep, value = line.partition(":")
        if not sep:
            continue
        if kind == "E":
            key, eq, val = value.partition("=")
            if eq and key:
                props[key] = val
        elif kind == "S" and value:
            links.append("/dev/" + value)
    return {"properties": props, "links": links}


def udev_available(root: Root) -> bool:
    """Say whether the root has a udev database at all (no udevd: none)."""
    return root.exists(UDEV_DATA)


def read_udev(root: Root, device_id: str) -> UdevRecord | None:
    """Read the record of a device id such as 'b8:0' (block) or 'n3' (netdev); None if absent."""
    if not device_id or "/" in device_id or device_id.startswith("."):
        return None  # never let a garbled id walk out of the database directory
    text = root.read(f"{UDEV_DATA}/{device_id}", optional=True)
    if text is None:
        return None
    return parse_udev_record(text)
