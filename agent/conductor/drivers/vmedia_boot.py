"""The ``redfish-virtual-media`` boot interface: the deploy ramdisk as an ISO in the BMC's virtual CD.

prepare_ramdisk builds ``<[pxe]http_root>/<node uuid>/boot.iso`` (iso_image: kernel, initramfs and
the agent's kernel command line, ISOLINUX for BIOS and GRUB for UEFI), inserts
``<[pxe]http_url>/<node uuid>/boot.iso`` through Redfish (VirtualMedia.InsertMedia, sushy), and the
conductor then boots the node once from the CD (``ramdisk_boot_device``). No TFTP, no PXE, no iPXE:
dnsmasq only gives the node's ports a lease (a host entry, no boot options) for the ramdisk's DHCP.
Clean-up ejects the medium and removes the ISO.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from oslo_log import log as logging

from agent.common import exception
from agent.common.config import CONF
from agent.conductor.drivers import base, boot_files, iso_image, pxe

LOG = logging.getLogger(__name__)

ISO_NAME = "boot.iso"
DEVICE = "cdrom"


def iso_url(uuid: str) -> str:
    """The URL the BMC downloads the node's boot ISO from."""
    return f"{CONF.pxe.http_url.rstrip('/')}/{uuid}/{ISO_NAME}"


def _redfish_management(task) -> None:
    """InvalidParameterValue unless the node's management interface can insert virtual media."""
    from agent.conductor.drivers import redfish  # sushy: imported only where Redfish is used

    management = task.driver.management
    if not isinstance(management, redfish.RedfishManagement):
        raise exception.InvalidParameterValue(
            err=f"Node {task.node.uuid}: the redfish-virtual-media boot interface needs the redfish "
            f"management interface (it inserts the ISO through Redfish); the node has "
            f"{task.node.management_interface or type(management).__name__}."
        )


class RedfishVirtualMediaBoot(pxe.PXEBoot):
    """Boot of the agent ramdisk from an ISO inserted in the BMC's virtual CD through Redfish."""

    ramdisk_boot_device = base.CDROM

    def validate(self, task) -> None:
        """Check the node's UUID, images, kernel parameters, boot mode, [pxe]http_url, Redfish and tools."""
        uuid = boot_files.node_uuid(task.node)
        self._images(task)
        self._cmdline(task, {})
        mode = boot_files.boot_mode(task.node)
        boot_files.check_token(CONF.pxe.http_url, "[pxe]http_url", uuid)
        _redfish_management(task)
        missing = iso_image.missing_tools((mode,))
        if missing:
            raise exception.InvalidParameterValue(
                err=f"Node {uuid}: the conductor cannot build the {mode} boot ISO; "
                f"missing: {', '.join(missing)}."
            )
        pxe_macs(task)

    # --- files: the ISO instead of boot configs ---------------------------------------------------

    def _write_boot_files(self, task, uuid: str, macs: list[str], params: dict[str, Any]) -> None:
        """Build the node's boot ISO under [pxe]http_root/<uuid>/ from the deploy kernel and ramdisk."""
        images = self._images(task)
        cmdline = self._cmdline(task, params)
        target = Path(boot_files.safe_path(CONF.pxe.http_root, f"{uuid}/{ISO_NAME}"))
        target.parent.mkdir(parents=True, exist_ok=True)
        # the work happens beside the node's directory (same filesystem: the ISO is renamed into place),
        # never inside it: clean-up removes that directory's files one level deep
        with tempfile.TemporaryDirectory(prefix=".kiln-iso-", dir=CONF.pxe.http_root) as tmp:
            kernel = iso_image.fetch(images["deploy_kernel"], Path(tmp) / "kernel")
            ramdisk = iso_image.fetch(images["deploy_ramdisk"], Path(tmp) / "ramdisk")
            iso_image.build(target, kernel, ramdisk, cmdline, work_dir=Path(tmp))
        LOG.info("Node %s: boot ISO %s built (%d bytes)", uuid, target, target.stat().st_size)

    def _write_disk_files(self, task, uuid: str, macs: list[str]) -> None:
        """Nothing: an instance boots from its disk, no fallback config is served."""

    def _remove_boot_files(self, uuid: str, macs: list[str]) -> None:
        boot_files.remove_dir(CONF.pxe.http_root, uuid)

    def dhcp_options(self, uuid: str, macs: list[str]) -> list[str]:
        """None: the ports get a lease for the ramdisk, and no boot file."""
        return []

    # --- the interface --------------------------------------------------------------------------

    def prepare_ramdisk(self, task, ramdisk_params: dict[str, Any]) -> None:
        """Build the ISO, give the ports DHCP leases, and insert the ISO into the BMC's virtual CD."""
        super().prepare_ramdisk(task, ramdisk_params)
        from agent.conductor.drivers import redfish_vmedia

        uuid = boot_files.node_uuid(task.node)
        redfish_vmedia.detach(task.node, [DEVICE])
        redfish_vmedia.attach(task.node, DEVICE, iso_url(uuid))
        LOG.info("Node %s: the agent ramdisk boots from virtual media %s", uuid, iso_url(uuid))

    def _eject(self, task) -> None:
        from agent.conductor.drivers import redfish_vmedia

        try:
            redfish_vmedia.detach(task.node, [DEVICE])
        except Exception as exc:  # noqa: BLE001 - a BMC that cannot eject must not keep files around
            LOG.warning("Node %s: ejecting the boot ISO failed: %s", task.node.uuid, exc)

    def clean_up_ramdisk(self, task) -> None:
        """Eject the ISO, remove it and the node's DHCP entries (an instance keeps its leases)."""
        self._eject(task)
        super().clean_up_ramdisk(task)

    def prepare_instance(self, task) -> None:
        """Eject the ISO and remove it; the ports keep their leases; the instance boots from disk."""
        self._eject(task)
        self._clean_up(task, keep_hosts=self._current_macs(task))
        LOG.info("Node %s: boot ISO ejected; the instance boots from disk", task.node.uuid)

    def clean_up_instance(self, task) -> None:
        """Eject anything left and remove the node's host entries."""
        self._eject(task)
        super().clean_up_instance(task)


def pxe_macs(task) -> list[str]:
    """The node's PXE-enabled ports' MACs (their DHCP leases for the ramdisk); a warning when none."""
    macs = pxe.pxe_macs(task)
    if not macs:
        LOG.warning(
            "Node %s has no port with pxe_enabled=True: Kiln's dnsmasq gives its ramdisk no lease; "
            "another DHCP server must.",
            task.node.uuid,
        )
    return macs
