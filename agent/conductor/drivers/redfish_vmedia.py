"""Virtual media over Redfish: insert an image into the BMC manager's CD/DVD, floppy or USB device,
and eject it (Ironic's vmedia attach and detach)."""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging

from agent.common import exception
from agent.conductor.drivers import redfish

LOG = logging.getLogger(__name__)

#: API device type -> the Redfish MediaTypes a device must offer to take it.
MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    "cdrom": ("CD", "DVD"),
    "dvd": ("DVD", "CD"),
    "floppy": ("Floppy",),
    "usb": ("USBStick",),
}


def _devices(node: Any) -> list:
    system = redfish.get_system(node)
    found = []
    for manager in system.managers:
        found.extend(manager.virtual_media.get_members())
    return found


def _offers(device: Any, device_type: str) -> bool:
    offered = {str(getattr(t, "value", t)) for t in (device.media_types or [])}
    return bool(offered & set(MEDIA_TYPES[device_type]))


def attach(node: Any, device_type: str, image_url: str) -> None:
    """Insert ``image_url`` into the first free device offering ``device_type``."""
    devices = [d for d in _devices(node) if _offers(d, device_type)]
    if not devices:
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid}: the BMC has no virtual media device for {device_type}."
        )
    free = [d for d in devices if not d.inserted] or devices
    device = free[0]
    if device.inserted:
        redfish._call(node, "eject virtual media", device.eject_media)
    redfish._call(
        node, "insert virtual media", device.insert_media, image_url, inserted=True, write_protected=True
    )
    LOG.info("Node %s: %s inserted into virtual %s", node.uuid, image_url, device_type)


def detach(node: Any, device_types: list[str] | None) -> None:
    """Eject the media of ``device_types`` (every inserted medium when None)."""
    for device in _devices(node):
        wanted = device_types is None or any(_offers(device, t) for t in device_types)
        if wanted and device.inserted:
            redfish._call(node, "eject virtual media", device.eject_media)
            LOG.info("Node %s: virtual media %s ejected", node.uuid, device.identity)
