"""dnsmasq's per-port dhcp-hostsdir and per-node dhcp-optsdir files.

A host file ``<mac>`` holds one line. While the node boots the agent it is
``aa:bb:cc:dd:ee:ff,set:kiln-<node-uuid>,set:kiln-<mac12>``: the node tag selects the node's options,
the port tag the per-MAC iPXE script URL. A deployed instance's port gets the bare MAC (a lease, no
tag, so no boot options). A port that leaves gets ``<mac>,ignore`` (``<mac>,set:kiln-gone`` when
[dnsmasq]ignore_unknown is off): a tombstone, pruned once it is older than [dnsmasq]tombstone_ttl
(``prune_tombstones``, a periodic task of the conductor).

Why rewrite instead of delete: dnsmasq re-reads a changed file by inotify and replaces that file's
entry, but keeps the entry of a deleted file until SIGHUP, and dnsmasq 2.90 (Debian 12) crashes
(SIGSEGV) on SIGHUP once it has answered a host whose dhcp-hostsdir line sets tags. So nothing here
deletes a live host file or signals dnsmasq; removed optsdir files stay loaded, but no host sets
their tags any more. A tombstone may go once dnsmasq has read it: what dnsmasq keeps of a deleted
file is then the tombstone itself, and after a restart the MAC is simply unknown, as it should be.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable

from oslo_log import log as logging

from agent.common import exception
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


def instance_line(mac: str) -> str:
    """The dhcp-hostsdir line of a deployed instance's port: known, so it gets a lease; no tags."""
    return f"{boot_files.normalize_mac(mac)}\n"


GONE_TAG = "kiln-gone"
"""The tag of a tombstone when unknown MACs get leases: no options are tagged with it."""


def gone_line(mac: str) -> str:
    """The dhcp-hostsdir line of a port that left: ignored as unknown MACs are (or, when they get
    leases, a lease with no boot options)."""
    mac = boot_files.normalize_mac(mac)
    return f"{mac},ignore\n" if CONF.dnsmasq.ignore_unknown else f"{mac},set:{GONE_TAG}\n"


def write_hosts(node_uuid: str, macs: Iterable[str]) -> list[str]:
    """Write one dhcp-hostsdir file per MAC, tagged for the node's boot options; return the paths."""
    return [
        boot_files.write_file(CONF.dnsmasq.hostsdir, host_file_name(mac), host_line(mac, node_uuid))
        for mac in macs
    ]


def write_instance_hosts(macs: Iterable[str]) -> list[str]:
    """Write the hostsdir files of a deployed instance's ports (a lease, no boot options)."""
    return [
        boot_files.write_file(CONF.dnsmasq.hostsdir, host_file_name(mac), instance_line(mac)) for mac in macs
    ]


def is_live(content: str) -> bool:
    """Whether a hostsdir file's content gives its MAC boot options or a lease (not a tombstone)."""
    line = content.strip()
    return bool(line) and not line.endswith((",ignore", f",set:{GONE_TAG}"))


def write_opts(node_uuid: str, lines: Iterable[str]) -> str:
    """Write the node's dhcp-optsdir file (one tagged option per line); return its path."""
    content = "".join(line.rstrip("\n") + "\n" for line in lines)
    return boot_files.write_file(CONF.dnsmasq.optsdir, node_uuid, content)


def _bury(name: str, mac: str) -> bool:
    """Turn an existing hostsdir file into its tombstone; whether it was live."""
    hostsdir = CONF.dnsmasq.hostsdir
    path = os.path.join(hostsdir, name)
    if not os.path.isdir(hostsdir) or os.path.islink(path) or not os.path.isfile(path):
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            content = stream.read(4096)
    except OSError:
        content = ""
    if content == gone_line(mac):
        return False
    boot_files.write_file(hostsdir, name, gone_line(mac))
    return True


def remove_hosts(macs: Iterable[str]) -> int:
    """Take ``macs`` out of dnsmasq: their hostsdir files become tombstones; return how many changed."""
    return sum(_bury(host_file_name(mac), boot_files.normalize_mac(mac)) for mac in macs)


def remove_node_hosts(node_uuid: str) -> int:
    """Bury every hostsdir file tagged with the node (whatever its ports are now); return how many.

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
            try:
                mac = boot_files.normalize_mac(content.split(",", 1)[0])
            except exception.InvalidParameterValue:
                LOG.warning("dnsmasq host file %s names no MAC; left alone", entry.path)
                continue
            removed += _bury(entry.name, mac)
    return removed


def prune_tombstones(ttl: float | None = None, now: float | None = None) -> int:
    """Delete hostsdir tombstones older than ``ttl`` seconds ([dnsmasq]tombstone_ttl); return how many."""
    ttl = CONF.dnsmasq.tombstone_ttl if ttl is None else ttl
    hostsdir = CONF.dnsmasq.hostsdir
    if ttl <= 0 or not os.path.isdir(hostsdir):
        return 0
    now = time.time() if now is None else now
    pruned = 0
    for entry in os.scandir(hostsdir):
        if not entry.is_file(follow_symlinks=False) or entry.name.startswith("."):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime <= ttl:
                continue
            with open(entry.path, encoding="utf-8", errors="replace") as stream:
                content = stream.read(4096)
        except OSError:
            continue
        if content.strip() and not is_live(content):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            pruned += 1
    if pruned:
        LOG.info("Pruned %d dnsmasq host tombstone(s) older than %s s from %s", pruned, ttl, hostsdir)
    return pruned


def remove_opts(node_uuid: str) -> bool:
    """Remove the node's optsdir file; whether it existed."""
    return boot_files.remove(CONF.dnsmasq.optsdir, node_uuid)


def reload() -> bool:
    """SIGHUP dnsmasq when [dnsmasq]pid_file names a live process; whether a signal was sent.

    Not called by the boot interfaces: dnsmasq 2.90 crashes on SIGHUP with tagged hostsdir entries
    (see the module docstring). For operators' tools and a dnsmasq that needs it.
    """
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
