"""The ``ipxe`` boot interface: PXE firmware chain-loads iPXE, iPXE fetches the node's script over HTTP.

dnsmasq hands BIOS firmware ``undionly.kpxe`` and UEFI firmware ``snponly.efi`` (copied from Debian's
ipxe package into [pxe]tftp_root); once iPXE runs (user class "iPXE") it gets
``<[pxe]http_url>/<aa-bb-cc-dd-ee-ff>.ipxe``, a link to ``<http_root>/<node uuid>/boot.ipxe``.
"""

from __future__ import annotations

import os
import types
from typing import Any

from oslo_log import log as logging

from agent.common import exception
from agent.common.config import CONF
from agent.conductor.drivers import boot_files, dnsmasq, pxe

LOG = logging.getLogger(__name__)


def script_url(mac: str) -> str:
    """The URL iPXE on the port ``mac`` fetches its script from."""
    return f"{CONF.pxe.http_url.rstrip('/')}/{boot_files.mac_hexhyp(mac)}.ipxe"


def ensure_firmware() -> list[str]:
    """Copy the iPXE builds into [pxe]tftp_root when missing there; return the files in place."""
    placed = []
    for name in (CONF.pxe.ipxe_bootfile_bios, CONF.pxe.ipxe_bootfile_uefi):
        target = boot_files.safe_path(CONF.pxe.tftp_root, name)
        if os.path.isfile(target):
            placed.append(target)
            continue
        source = os.path.join(CONF.pxe.ipxe_firmware_dir, name)
        if not os.path.isfile(source):
            raise exception.KilnException(
                f"iPXE firmware {name} is neither in [pxe]tftp_root ({CONF.pxe.tftp_root}) nor in "
                f"[pxe]ipxe_firmware_dir ({CONF.pxe.ipxe_firmware_dir}); install Debian's ipxe package "
                "or copy the file there."
            )
        placed.append(boot_files.copy_file(source, CONF.pxe.tftp_root, name))
    return placed


class IPXEBoot(pxe.PXEBoot):
    """Network boot of the agent ramdisk through iPXE and a per-node script over HTTP."""

    def validate(self, task) -> None:
        """As pxe, plus a usable [pxe]http_url."""
        super().validate(task)
        boot_files.check_token(CONF.pxe.http_url, "[pxe]http_url", task.node.uuid)

    def _write_boot_files(self, task, uuid: str, macs: list[str], params: dict[str, Any]) -> None:
        """Render the node's iPXE script, link it from each MAC, and put the iPXE builds in place."""
        ensure_firmware()
        root = CONF.pxe.http_root
        images = self._images(task)
        boot_files.write_file(
            root,
            f"{uuid}/boot.ipxe",
            boot_files.render(
                "ipxe_script.j2",
                node_uuid=uuid,
                boot_mode=boot_files.boot_mode(task.node),
                kernel_url=images["deploy_kernel"],
                ramdisk_url=images["deploy_ramdisk"],
                cmdline=self._cmdline(task, params),
                timeout_ms=CONF.pxe.ipxe_fetch_timeout * 1000,
            ),
        )
        boot_files.write_file(
            root, "boot.ipxe", boot_files.render("boot.ipxe.j2", http_url=CONF.pxe.http_url.rstrip("/"))
        )
        for mac in macs:
            boot_files.link(root, f"{boot_files.mac_hexhyp(mac)}.ipxe", f"{uuid}/boot.ipxe")

    def _write_disk_files(self, task, uuid: str, macs: list[str]) -> None:
        """An iPXE script that boots the local disk, linked from each MAC."""
        ensure_firmware()
        root = CONF.pxe.http_root
        boot_files.write_file(
            root,
            f"{uuid}/boot.ipxe",
            boot_files.render("ipxe_disk.j2", node_uuid=uuid, boot_mode=boot_files.boot_mode(task.node)),
        )
        boot_files.write_file(
            root, "boot.ipxe", boot_files.render("boot.ipxe.j2", http_url=CONF.pxe.http_url.rstrip("/"))
        )
        for mac in macs:
            boot_files.link(root, f"{boot_files.mac_hexhyp(mac)}.ipxe", f"{uuid}/boot.ipxe")

    def _remove_boot_files(self, uuid: str, macs: list[str]) -> None:
        root = CONF.pxe.http_root
        for mac in macs:
            boot_files.remove(root, f"{boot_files.mac_hexhyp(mac)}.ipxe")
        boot_files.remove_dir(root, uuid)

    def dhcp_options(self, uuid: str, macs: list[str]) -> list[str]:
        """PXE firmware gets the iPXE build for its firmware; iPXE gets its port's script URL."""
        tag = dnsmasq.node_tag(uuid)
        lines = [
            f"tag:{tag},tag:!ipxe,tag:!efi,option:bootfile-name,{CONF.pxe.ipxe_bootfile_bios}",
            f"tag:{tag},tag:!ipxe,tag:efi,option:bootfile-name,{CONF.pxe.ipxe_bootfile_uefi}",
        ]
        for mac in macs:
            lines.append(f"tag:{dnsmasq.port_tag(mac)},tag:ipxe,option:bootfile-name,{script_url(mac)}")
            if CONF.pxe.tftp_server_v6:
                lines.append(f"tag:{dnsmasq.port_tag(mac)},tag:ipxe,option6:bootfile-url,{script_url(mac)}")
        return lines + pxe.server_lines(tag, CONF.pxe.ipxe_bootfile_uefi)


def forget_node(uuid: str, macs: list[str]) -> None:
    """Remove what the pxe or ipxe interface wrote here for a node another conductor now serves.

    Only this conductor's files go (boot configs, MAC links, dnsmasq options; host entries become
    tombstones); the node's record, kept up to date by its new conductor, is left alone.
    """
    uuid = boot_files.node_uuid(types.SimpleNamespace(uuid=uuid))
    pxe.PXEBoot()._remove_boot_files(uuid, macs)
    IPXEBoot()._remove_boot_files(uuid, macs)
    dnsmasq.remove_opts(uuid)
    dnsmasq.remove_hosts(macs)
    dnsmasq.remove_node_hosts(uuid)
