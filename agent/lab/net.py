"""The lab's provisioning network: namespace, bridge (or OVS switch), the host uplink, a veth per VM NIC."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agent.lab.state import State

NETNS = "kiln-lab"
BRIDGE = "br-lab"
HOST_LINK = "kiln-lab-h"
UPLINK = "uplink"
HOST_IP = "10.99.0.1"
DNSMASQ_IP = "10.99.0.2"
PREFIX = 24
DHCP_RANGE = "10.99.0.100,10.99.0.199,255.255.255.0,10m"


class NetError(RuntimeError):
    """An ip(8) command failed."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``ip ARGS``; NetError naming the command when it fails and ``check``."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetError(f"ip {' '.join(args)} failed: {proc.stderr.strip()} (the lab needs root and iproute2)")
    return proc


def in_ns(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``ip ARGS`` inside the lab namespace."""
    return ip("-n", NETNS, *args, check=check)


def ns_link(index: int, nic: int = 0) -> str:
    """The namespace end of VM ``index``'s NIC ``nic`` veth: its switch port (vm0, vm0n1, ...)."""
    return f"vm{index}" if nic == 0 else f"vm{index}n{nic}"


def host_link(index: int, nic: int = 0) -> str:
    """The host end of VM ``index``'s NIC ``nic`` veth: the lower device of its macvtap NIC."""
    return "kl-" + ns_link(index, nic)


def _sysctl(dev: str, key: str, value: str) -> None:
    Path(f"/proc/sys/net/{key.replace('%s', dev)}").write_text(value)


def _isolate_host_end(dev: str, addressed: bool = False) -> None:
    """No IPv6 (no autoconf chatter into the lab), no forwarding of what arrives from the lab.

    A VM's host end has no address, but the host's IP stack still sees the broadcasts on it: it
    answers no ARP there (arp_ignore 8) and drops what fails the reverse path (rp_filter 1), so a
    VM never reaches the host's addresses except through the uplink (``addressed``: arp_ignore 1).
    """
    _sysctl(dev, "ipv6/conf/%s/disable_ipv6", "1")
    _sysctl(dev, "ipv4/conf/%s/forwarding", "0")
    _sysctl(dev, "ipv4/conf/%s/accept_redirects", "0")
    _sysctl(dev, "ipv4/conf/%s/send_redirects", "0")
    _sysctl(dev, "ipv4/conf/%s/arp_ignore", "1" if addressed else "8")
    _sysctl(dev, "ipv4/conf/%s/rp_filter", "1")


def exists() -> bool:
    """Whether the lab namespace exists."""
    return NETNS in ip("netns", "list").stdout.split()


def create(state: State, switch: str | None = None) -> None:
    """The namespace with its bridge (dnsmasq's address) and the veth to the host (10.99.0.1).

    ``switch`` "ovs": the bridge is the lab's Open vSwitch (agent.lab.switch), dnsmasq's address
    on its provisioning port; else a Linux bridge.
    """
    if exists():
        raise NetError(f"network namespace {NETNS} exists already: run kiln-lab down first")
    state.add("netns", NETNS)
    ip("netns", "add", NETNS)
    in_ns("link", "set", "lo", "up")
    if switch is None:
        in_ns("link", "add", BRIDGE, "type", "bridge")
        in_ns("addr", "add", f"{DNSMASQ_IP}/{PREFIX}", "dev", BRIDGE)
        in_ns("link", "set", BRIDGE, "up")
    state.add("links", HOST_LINK)
    ip("link", "add", HOST_LINK, "type", "veth", "peer", "name", UPLINK, "netns", NETNS)
    _isolate_host_end(HOST_LINK, addressed=True)
    ip("addr", "add", f"{HOST_IP}/{PREFIX}", "dev", HOST_LINK)
    ip("link", "set", HOST_LINK, "up")
    if switch is None:
        in_ns("link", "set", UPLINK, "master", BRIDGE)
    else:
        from agent.lab import switch as ovs

        ovs.offloads_off(HOST_LINK)
        ovs.start(state)
    in_ns("link", "set", UPLINK, "up")


def add_vm_link(state: State, index: int, nic: int = 0, switch: str | None = None) -> str:
    """A veth whose namespace end is a bridge (or switch) port; return the host end (for the macvtap)."""
    dev, peer = host_link(index, nic), ns_link(index, nic)
    state.add("links", dev)
    ip("link", "add", dev, "type", "veth", "peer", "name", peer, "netns", NETNS)
    _isolate_host_end(dev)
    ip("link", "set", dev, "up")
    if switch is None:
        in_ns("link", "set", peer, "master", BRIDGE)
    else:
        from agent.lab import switch as ovs

        ovs.offloads_off(dev)
        ovs.add_port(state, peer)
    in_ns("link", "set", peer, "up")
    return dev


def destroy(state: State | None) -> list[str]:
    """Delete the recorded host links and the namespace (with all in it); return what was there."""
    removed = []
    links = state.items("links") if state else []
    for dev in links:
        if ip("link", "del", dev, check=False).returncode == 0:
            removed.append(f"link {dev}")
    if exists():
        ip("netns", "del", NETNS)
        removed.append(f"netns {NETNS}")
    return removed


def leftovers() -> list[str]:
    """Lab links and the namespace still present on this host (none after down)."""
    found = [f"netns {NETNS}"] if exists() else []
    for line in ip("-o", "link", "show").stdout.splitlines():
        name = line.split(":", 2)[1].strip().split("@", 1)[0]
        if name == HOST_LINK or name.startswith("kl-vm") or name.startswith("macvtap"):
            found.append(f"link {name}")
    return found
