"""dnsmasq's per-port dhcp-hostsdir and per-node dhcp-optsdir files, and the reload signal.

A host file ``<mac>`` holds one line ``aa:bb:cc:dd:ee:ff,set:kiln-<node-uuid>,set:kiln-<mac12>``: the
node tag selects the node's options, the port tag the per-MAC iPXE script URL. dnsmasq picks up new
and changed files by itself (inotify) but keeps entries of removed files until SIGHUP, so removals
signal the process named by [dnsmasq]pid_file.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterable

from agent.common.config import CONF
from agent.conductor.drivers import boot_files

LOG = logging.getLogger(__name__)


def node_tag(node_uuid: str) -> str:
    """The dnsmasq tag every PXE port of the node gets."""
    return f"kiln-{node_uuid}"


def port_tag(mac: str) -> str:
    """The dnsmasq tag of one port (its MAC as 12 hex digits)."""
    return "kiln-" + boot_files.normalize_mac(mac).replace(":", "")


def host_file_name(mac: str) -> str:
    """A port's file in dhcp-hostsdir: its MAC as aa-bb-cc-dd-ee-ff (no colons in file names)."""
    return boot_files.mac_hexhyp(mac)


def host_line(mac: str, node_uuid: str) -> str:
    """The dhcp-hostsdir line for one port of the node."""
    mac = boot_files.normalize_mac(mac)
    return f"{mac},set:{node_tag(node_uuid)},set:{port_tag(mac)}\n"


def write_hosts(node_uuid: str, macs: Iterable[str]) -> list[str]:
    """Write one dhcp-hostsdir file per MAC; return the paths."""
    return [
        boot_files.write_file(CONF.dnsmasq.hostsdir, host_file_name(mac), host_line(mac, node_uuid))
        for mac in macs
    ]


def write_opts(node_uuid: str, lines: Iterable[str]) -> str:
    """Write the node's dhcp-optsdir file (one tagged option per line); return its path."""
    content = "".join(line.rstrip("\n") + "\n" for line in lines)
    return boot_files.write_file(CONF.dnsmasq.optsdir, node_uuid, content)


def remove_hosts(macs: Iterable[str]) -> int:
    """Remove the hostsdir files of ``macs``; return how many existed."""
    return sum(boot_files.remove(CONF.dnsmasq.hostsdir, host_file_name(mac)) for mac in macs)


def remove_node_hosts(node_uuid: str) -> int:
    """Remove every hostsdir file tagged with the node (whatever its ports are now); return how many.

    For a node that leaves without its recorded MACs (deleted in maintenance, ports changed by hand).
    """
    hostsdir = CONF.dnsmasq.hostsdir
    if not os.path.isdir(hostsdir):
        return 0
    marker = f",set:{node_tag(node_uuid)},"
    removed = 0
    for entry in os.scandir(hostsdir):
        if not entry.is_file(follow_symlinks=False) or entry.name.startswith("."):
            continue
        try:
            with open(entry.path, encoding="utf-8", errors="replace") as stream:
                content = stream.read(4096)
        except OSError:
            continue
        if marker in content:
            removed += boot_files.remove(hostsdir, entry.name)
    return removed


def remove_opts(node_uuid: str) -> bool:
    """Remove the node's optsdir file; whether it existed."""
    return boot_files.remove(CONF.dnsmasq.optsdir, node_uuid)


def reload() -> bool:
    """SIGHUP dnsmasq when [dnsmasq]pid_file names a live process; whether a signal was sent."""
    pid_file = CONF.dnsmasq.pid_file
    if not pid_file:
        LOG.debug("No [dnsmasq]pid_file: removed host entries stay in dnsmasq until it reloads.")
        return False
    try:
        with open(pid_file, encoding="ascii") as stream:
            text = stream.read().strip()
    except OSError as exc:
        LOG.warning("Cannot read dnsmasq pid file %s (%s); dnsmasq not reloaded.", pid_file, exc)
        return False
    if not text.isdigit() or int(text) <= 1:
        LOG.warning("dnsmasq pid file %s holds %r, not a process id; dnsmasq not reloaded.", pid_file, text)
        return False
    try:
        os.kill(int(text), signal.SIGHUP)
    except ProcessLookupError:
        LOG.warning("dnsmasq (pid %s from %s) is not running; not reloaded.", text, pid_file)
        return False
    return True


def render_conf(
    interface: str,
    dhcp_ranges: Iterable[str],
    tftp_root: str | None = None,
    hostsdir: str | None = None,
    optsdir: str | None = None,
    pid_file: str | None = None,
    ignore_unknown: bool | None = None,
    extra: Iterable[str] = (),
) -> str:
    """A dnsmasq configuration serving DHCP+TFTP from the conductor's files (sample and tests)."""
    return boot_files.render(
        "dnsmasq.conf.j2",
        interface=interface,
        dhcp_ranges=list(dhcp_ranges),
        tftp_root=tftp_root or CONF.pxe.tftp_root,
        hostsdir=hostsdir or CONF.dnsmasq.hostsdir,
        optsdir=optsdir or CONF.dnsmasq.optsdir,
        pid_file=pid_file if pid_file is not None else CONF.dnsmasq.pid_file,
        ignore_unknown=CONF.dnsmasq.ignore_unknown if ignore_unknown is None else ignore_unknown,
        extra=list(extra),
    )
