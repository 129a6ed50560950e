"""The ``pxe`` boot interface: PXELINUX (BIOS) or GRUB (UEFI) configs over TFTP, dnsmasq options per node.

Everything a node gets is written under its UUID (``<tftp_root>/<uuid>/``) and linked from each
PXE-enabled port's MAC; the MACs written are kept in driver_internal_info so that clean-up removes
them even after ports changed. ``ipxe`` (ipxe.py) reuses this class with an iPXE script over HTTP.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from oslo_log import log as logging

from agent.common import exception
from agent.common.config import CONF
from agent.conductor import broker_accounts
from agent.conductor.drivers import base, boot_files, dnsmasq

LOG = logging.getLogger(__name__)

WRITTEN_KEY = "boot_macs"
"""driver_internal_info key: the MACs this interface linked boot files and dnsmasq hosts for."""
INSTANCE_DHCP_KEY = "boot_instance_dhcp"
"""driver_internal_info key, true from prepare_instance to clean_up_instance: the deployed instance keeps
its ports' dnsmasq host entries (a lease on the flat network, no boot options)."""

_REQUIRED = {
    "deploy_kernel": "URL of the agent ramdisk's kernel ([pxe]deploy_kernel when unset).",
    "deploy_ramdisk": "URL of the agent ramdisk's initramfs ([pxe]deploy_ramdisk when unset).",
}
_OPTIONAL = {
    "kernel_append_params": "Agent kernel command line (replaces [pxe]kernel_append_params).",
}


def pxe_macs(task) -> list[str]:
    """The normalised MACs of the node's PXE-enabled ports; InvalidParameterValue naming a bad port."""
    macs = []
    for port in task.ports:
        if port.pxe_enabled:
            macs.append(boot_files.normalize_mac(port.address, f"Node {task.node.uuid}, port {port.uuid}: "))
    return macs


class PXEBoot(base.BootInterface):
    """Network boot of the agent ramdisk with PXELINUX (BIOS) or GRUB (UEFI) from dnsmasq's TFTP."""

    def get_properties(self) -> dict[str, str]:
        """driver_info keys: deploy_kernel, deploy_ramdisk (required without [pxe] defaults) and more."""
        return {**_REQUIRED, **_OPTIONAL}

    # --- what the node needs ----------------------------------------------------------------------

    def _images(self, task) -> dict[str, str]:
        node = task.node.uuid
        info = task.node.driver_info or {}
        found = {key: info.get(key) or getattr(CONF.pxe, key) for key in _REQUIRED}
        missing = sorted(key for key, value in found.items() if not value)
        if missing:
            raise exception.MissingParameterValue(
                err=f"Node {node}: driver_info is missing {', '.join(missing)} and [pxe] has no default; "
                "set them to the agent ramdisk's kernel and initramfs URLs."
            )
        return {
            key: boot_files.check_token(value, f"driver_info {key}", node) for key, value in found.items()
        }

    def _cmdline(self, task, ramdisk_params: dict[str, Any]) -> str:
        """The agent's kernel command line: operator params, node UUID, how to reach the conductor."""
        node = task.node.uuid
        info = task.node.driver_info or {}
        base_params = info.get("kernel_append_params")
        base_params = CONF.pxe.kernel_append_params if base_params is None else base_params
        parts = [boot_files.check_cmdline(base_params or "", "kernel_append_params", node)]
        parts.append(f"kiln.node_uuid={node}")
        if broker_accounts.per_node():
            parts.append(
                "kiln.config_url="
                + boot_files.check_token(broker_accounts.config_url(node), "config URL", node)
            )
            key = broker_accounts.config_key()
            if key:
                parts.append(f"kiln.config_key={key}")
        elif CONF.pxe.agent_config_url:
            parts.append(
                "kiln.config_url="
                + boot_files.check_token(CONF.pxe.agent_config_url, "agent_config_url", node)
            )
        elif CONF.pxe.kernel_transport_url:
            parts.append(
                "kiln.transport_url="
                + boot_files.check_token(CONF.pxe.kernel_transport_url, "transport URL", node)
            )
        for key in sorted(ramdisk_params or {}):
            boot_files.check_param_key(key, node)
            if "token" in key.lower():
                # The agent gets its token at lookup over RPC; a token on the command line would be readable
                # by anyone who can fetch the boot script.
                LOG.warning(
                    "Node %s: ramdisk parameter %s dropped: tokens never go on the command line.", node, key
                )
                continue
            value = ramdisk_params[key]
            if value is None:
                continue
            parts.append(f"{key}={boot_files.check_token(str(value), f'ramdisk parameter {key}', node)}")
        return " ".join(p for p in parts if p)

    def validate(self, task) -> None:
        """Check the node's UUID, images, kernel parameters, boot mode and that it has a PXE-enabled port."""
        boot_files.node_uuid(task.node)
        if broker_accounts.per_node():
            broker_accounts.check_per_node(task.node.uuid)
        self._images(task)
        self._cmdline(task, {})
        boot_files.boot_mode(task.node)
        if not pxe_macs(task):
            raise exception.InvalidParameterValue(
                err=f"Node {task.node.uuid} has no port with pxe_enabled=True: it cannot network-boot; "
                "create a port for its boot NIC's MAC."
            )

    # --- files ----------------------------------------------------------------------------------

    def _write_boot_files(self, task, uuid: str, macs: list[str], params: dict[str, Any]) -> None:
        """Render the node's PXELINUX and GRUB configs and link them from each MAC."""
        root = CONF.pxe.tftp_root
        images = self._images(task)
        cmdline = self._cmdline(task, params)
        boot_files.write_file(
            root,
            f"{uuid}/config",
            boot_files.render(
                "pxelinux_config.j2",
                node_uuid=uuid,
                kernel_url=images["deploy_kernel"],
                ramdisk_url=images["deploy_ramdisk"],
                cmdline=cmdline,
            ),
        )
        for mac in macs:
            hexhyp = boot_files.mac_hexhyp(mac)
            boot_files.write_file(
                root,
                f"{uuid}/grub-{hexhyp}.cfg",
                boot_files.render(
                    "grub_config.j2",
                    node_uuid=uuid,
                    kernel_url=grub_path(images["deploy_kernel"]),
                    ramdisk_url=grub_path(images["deploy_ramdisk"]),
                    cmdline=cmdline,
                    bootif=hexhyp,
                ),
            )
            boot_files.link(root, f"pxelinux.cfg/01-{hexhyp}", f"{uuid}/config")
            boot_files.link(root, f"grub/grub.cfg-01-{hexhyp}", f"{uuid}/grub-{hexhyp}.cfg")

    def _remove_boot_files(self, uuid: str, macs: list[str]) -> None:
        root = CONF.pxe.tftp_root
        for mac in macs:
            hexhyp = boot_files.mac_hexhyp(mac)
            boot_files.remove(root, f"pxelinux.cfg/01-{hexhyp}")
            boot_files.remove(root, f"grub/grub.cfg-01-{hexhyp}")
        boot_files.remove_dir(root, uuid)

    def dhcp_options(self, uuid: str, macs: list[str]) -> list[str]:
        """The node's dhcp-optsdir lines: PXELINUX for BIOS firmware, GRUB for UEFI."""
        tag = dnsmasq.node_tag(uuid)
        lines = [
            f"tag:{tag},tag:!efi,option:bootfile-name,{CONF.pxe.pxe_bootfile_bios}",
            f"tag:{tag},tag:efi,option:bootfile-name,{CONF.pxe.pxe_bootfile_uefi}",
        ]
        return lines + server_lines(tag, CONF.pxe.pxe_bootfile_uefi)

    # --- the interface --------------------------------------------------------------------------

    def _recorded_macs(self, task) -> list[str]:
        recorded = (task.node.driver_internal_info or {}).get(WRITTEN_KEY) or []
        macs = []
        for mac in recorded:
            try:
                macs.append(boot_files.normalize_mac(mac))
            except exception.InvalidParameterValue:
                LOG.warning("Node %s: ignoring recorded boot MAC %r: not a MAC.", task.node.uuid, mac)
        return macs

    def _record(self, task, macs: list[str] | None, instance_dhcp: bool = False) -> None:
        info = dict(task.node.driver_internal_info or {})
        if macs:
            info[WRITTEN_KEY] = sorted(set(macs))
        else:
            info.pop(WRITTEN_KEY, None)
        if instance_dhcp:
            info[INSTANCE_DHCP_KEY] = True
        else:
            info.pop(INSTANCE_DHCP_KEY, None)
        task.update_node({"driver_internal_info": info})

    def prepare_ramdisk(self, task, ramdisk_params: dict[str, Any]) -> None:
        """Write the node's boot configs, MAC links and dnsmasq files (dnsmasq reads them by inotify)."""
        self.validate(task)
        uuid = boot_files.node_uuid(task.node)
        macs = pxe_macs(task)
        stale = [mac for mac in self._recorded_macs(task) if mac not in macs]
        self._remove_boot_files(uuid, stale)
        dnsmasq.remove_hosts(stale)
        self._record(task, sorted(set(macs) | set(self._recorded_macs(task))))
        if broker_accounts.per_node():
            broker_accounts.grant_agent_access(uuid)
        self._write_boot_files(task, uuid, macs, ramdisk_params or {})
        dnsmasq.write_opts(uuid, self.dhcp_options(uuid, macs))
        dnsmasq.write_hosts(uuid, macs)
        self._record(task, macs)
        LOG.info("Node %s: network boot of the agent prepared for %s", uuid, ", ".join(macs))

    def _current_macs(self, task) -> list[str]:
        try:
            return pxe_macs(task)
        except exception.InvalidParameterValue as exc:
            LOG.warning("Node %s: %s (cleaning up the recorded MACs only)", task.node.uuid, exc)
            return []

    def _clean_up(self, task, keep_hosts: list[str]) -> None:
        """Remove boot files and options; bury every host entry but ``keep_hosts``, which lose their tags."""
        uuid = boot_files.node_uuid(task.node)
        macs = sorted(set(self._current_macs(task)) | set(self._recorded_macs(task)))
        self._remove_boot_files(uuid, macs)
        dnsmasq.remove_opts(uuid)
        dnsmasq.remove_hosts([mac for mac in macs if mac not in keep_hosts])
        if keep_hosts:
            dnsmasq.write_instance_hosts(keep_hosts)
            self._record(task, keep_hosts, instance_dhcp=True)
        else:
            self._record(task, None)

    def clean_up_ramdisk(self, task) -> None:
        """Remove the agent's boot files and options; the host entries too, unless an instance keeps them.

        Between prepare_instance and clean_up_instance the deployed instance still needs its DHCP lease
        on the flat network, so its ports' host entries stay (they carry no boot options).
        """
        instance = bool((task.node.driver_internal_info or {}).get(INSTANCE_DHCP_KEY))
        if broker_accounts.per_node():
            broker_accounts.revoke_agent_access(boot_files.node_uuid(task.node))
        self._clean_up(task, keep_hosts=self._current_macs(task) if instance else [])
        if instance:
            LOG.info("Node %s: agent boot files removed; host entries kept for the instance", task.node.uuid)
        else:
            LOG.info("Node %s: network boot files and host entries removed", task.node.uuid)

    def prepare_instance(self, task) -> None:
        """Switch to local boot; with [pxe]enable_netboot_fallback, a MAC-keyed config that boots from disk.

        Without the fallback the node gets no boot config and no boot options (its host entries stay
        for DHCP). A conductor that takes the node over calls this again to write the same files in
        its own [pxe] and [dnsmasq] directories.
        """
        macs = self._current_macs(task)
        self._clean_up(task, keep_hosts=macs)
        if not (CONF.pxe.enable_netboot_fallback and macs):
            LOG.info("Node %s: network boot switched off; the instance boots from disk", task.node.uuid)
            return
        uuid = boot_files.node_uuid(task.node)
        self._write_disk_files(task, uuid, macs)
        dnsmasq.write_opts(uuid, self.dhcp_options(uuid, macs))
        dnsmasq.write_hosts(uuid, macs)
        self._record(task, macs, instance_dhcp=True)
        LOG.info("Node %s: network boot falls back to the local disk for %s", uuid, ", ".join(macs))

    def _write_disk_files(self, task, uuid: str, macs: list[str]) -> None:
        """PXELINUX and GRUB configs that boot the local disk, linked from each MAC."""
        root = CONF.pxe.tftp_root
        boot_files.write_file(root, f"{uuid}/config", boot_files.render("pxelinux_disk.j2", node_uuid=uuid))
        for mac in macs:
            hexhyp = boot_files.mac_hexhyp(mac)
            boot_files.write_file(
                root, f"{uuid}/grub-{hexhyp}.cfg", boot_files.render("grub_disk.j2", node_uuid=uuid)
            )
            boot_files.link(root, f"pxelinux.cfg/01-{hexhyp}", f"{uuid}/config")
            boot_files.link(root, f"grub/grub.cfg-01-{hexhyp}", f"{uuid}/grub-{hexhyp}.cfg")

    def clean_up_instance(self, task) -> None:
        """Remove everything left for the node, host entries included (any tagged with it, too)."""
        self._clean_up(task, keep_hosts=[])
        dnsmasq.remove_node_hosts(boot_files.node_uuid(task.node))
        LOG.info("Node %s: host entries of the instance removed", task.node.uuid)


def grub_path(url: str) -> str:
    """An http(s) URL as GRUB's (http,host:port)/path; anything else unchanged (a TFTP-relative path)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return url
    path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    return f"({parsed.scheme},{parsed.netloc}){path}"


def server_lines(tag: str, uefi_bootfile: str) -> list[str]:
    """next-server for IPv4 when configured; DHCPv6 boot-file URLs when [pxe]tftp_server_v6 is set."""
    lines = []
    if CONF.pxe.tftp_server:
        lines.append(f"tag:{tag},option:server-ip-address,{CONF.pxe.tftp_server}")
        lines.append(f"tag:{tag},option:tftp-server,{CONF.pxe.tftp_server}")
    if CONF.pxe.tftp_server_v6:
        lines.append(
            f"tag:{tag},tag:!ipxe,option6:bootfile-url,tftp://[{CONF.pxe.tftp_server_v6}]/{uefi_bootfile}"
        )
    return lines
