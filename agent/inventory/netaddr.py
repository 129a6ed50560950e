"""IP addresses per interface: psutil on the live host, /proc/net files in a captured tree."""

from __future__ import annotations

import ipaddress
import socket

import psutil

from agent.inventory.base import Root

Addresses = dict[str, tuple[list[str], list[str]]]  # ifname -> (ipv4, ipv6)


def _add(result: Addresses, name: str, address: str, v6: bool) -> None:
    v4s, v6s = result.setdefault(name, ([], []))
    target = v6s if v6 else v4s
    if address not in target:
        target.append(address)


def live_addresses() -> Addresses:
    """Return the live host's addresses per interface (IPv6 without the %scope suffix)."""
    result: Addresses = {}
    for name, addrs in psutil.net_if_addrs().items():
        for addr in addrs:
            if addr.family == socket.AF_INET:
                _add(result, name, addr.address, False)
            elif addr.family == socket.AF_INET6:
                _add(result, name, addr.address.split("%", 1)[0], True)
    return result


def parse_local_ipv4(fib_trie: str) -> list[str]:
    """Return the local IPv4 addresses of /proc/net/fib_trie (leaves marked '/32 host LOCAL')."""
    found: list[str] = []
    leaf = None
    for line in fib_trie.splitlines():
        text = line.strip()
        if text.startswith("|-- "):
            leaf = text[4:].strip()
        elif leaf and text.split()[:3] == ["/32", "host", "LOCAL"]:
            if leaf not in found:
                found.append(leaf)
        elif text.startswith("+-- "):
            leaf = None
    return found


def parse_routes(route: str) -> list[tuple[str, ipaddress.IPv4Network]]:
    """Return the (interface, directly connected network) pairs of /proc/net/route."""
    routes = []
    for line in route.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            flags = int(fields[3], 16)
            dest = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
            mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except (ValueError, OverflowError):
            continue
        if not flags & 0x2:  # RTF_GATEWAY: not a connected network
            routes.append((fields[0], net))
    return routes


def parse_if_inet6(text: str) -> list[tuple[str, str]]:
    """Return the (interface, address) pairs of /proc/net/if_inet6."""
    pairs = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 6 or len(fields[0]) != 32:
            continue
        try:
            addr = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
        except ValueError:
            continue
        pairs.append((fields[5], addr.compressed))
    return pairs


def captured_addresses(root: Root) -> Addresses:
    """Map a captured tree's addresses to interfaces: IPv4 through the connected routes."""
    result: Addresses = {}
    fib = root.read("/proc/net/fib_trie", optional=True)
    route = root.read("/proc/net/route", optional=True)
    if fib is not None and route is not None:
        routes = parse_routes(route)
        for text in parse_local_ipv4(fib):
            try:
                addr = ipaddress.IPv4Address(text)
            except ValueError:
                root.note("/proc/net/fib_trie", f"garbled: {text[:40]!r} is not an IPv4 address")
                continue
            matches = [(net.prefixlen, name) for name, net in routes if addr in net]
            if matches:
                _add(result, max(matches)[1], text, False)
    inet6 = root.read("/proc/net/if_inet6", optional=True)
    for name, addr in parse_if_inet6(inet6 or ""):
        _add(result, name, addr, True)
    return result


def read_addresses(root: Root) -> Addresses:
    """Return addresses per interface: exact from the kernel on '/', reconstructed elsewhere."""
    return live_addresses() if root.path == "/" else captured_addresses(root)
