"""One lab VM's boot, phase by phase, read from the lab's logs (for the benchmark and the e2e tests).

Power-on is when libvirt reports the domain running (polled); DHCP from dnsmasq's log (whole
seconds); the iPXE script and the initramfs fetches from the HTTP server's log (ms); kernel start is
the lookup's time less the kernel's uptime printed beside the agent's "Lookup found" on the console;
the lookup is the conductor's "Issued the agent token" line (ms).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

_CONDUCTOR_TIME = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) .*Issued the agent token of node (\S+)"
)
_CONDUCTOR_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")
_DHCP = re.compile(r"^(\w{3} +\d+ \d\d:\d\d:\d\d) dnsmasq-dhcp\[\d+\]: \d+ DHCPACK\(\S+\) \S+ (\S+)")
_HTTP = re.compile(r'^(\d+\.\d+) \S+ "GET /(\S+) HTTP')
_UPTIME_AT_LOOKUP = re.compile(r"^\[ *(\d+\.\d+)\] kiln-agent\[\d+\]: .*Lookup found node")
_FIRST_ATTEMPT = re.compile(r"^\[ *(\d+\.\d+)\] kiln-agent\[\d+\]: .*(Transport URL|lookup failed)")


def wait_power_on(conn, name: str, timeout: float = 120) -> float:
    """Poll libvirt until domain ``name`` runs; the wall-clock time it was first seen running."""
    deadline = time.monotonic() + timeout
    dom = conn.lookupByName(name)
    while not dom.isActive():
        if time.monotonic() > deadline:
            raise TimeoutError(f"domain {name} was not powered on within {timeout:.0f} s")
        time.sleep(0.05)
    return time.time()


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []


def lookup_time(lab: Path, node_uuid: str, after: float = 0.0) -> float | None:
    """When the conductor issued ``node_uuid``'s agent token (its lookup) at or after ``after``."""
    for line in _lines(lab / "logs" / "kiln-conductor.log"):
        m = _CONDUCTOR_TIME.match(line)
        if m and m.group(2) == node_uuid:
            when = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            if when >= after:
                return when
    return None


def conductor_time(lab: Path, node_uuid: str, text: str, after: float = 0.0) -> float | None:
    """When the conductor first logged a line naming ``node_uuid`` and holding ``text``, from ``after`` on."""
    for line in _lines(lab / "logs" / "kiln-conductor.log"):
        m = _CONDUCTOR_LINE.match(line)
        if m and node_uuid in line and text in line:
            when = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            if when >= after:
                return when
    return None


def dhcp_times(lab: Path, mac: str, after: float) -> list[float]:
    """The times of dnsmasq's DHCPACKs to ``mac`` at or after ``after`` (whole seconds)."""
    year = dt.date.today().year
    found = []
    for line in _lines(lab / "logs" / "dnsmasq-dhcp.log"):
        m = _DHCP.match(line)
        if m and m.group(2) == mac:
            when = dt.datetime.strptime(f"{year} {m.group(1)}", "%Y %b %d %H:%M:%S").timestamp()
            if when >= int(after):
                found.append(when)
    return found


def http_time(lab: Path, path: str, after: float) -> float | None:
    """When the HTTP server first answered a GET of ``path`` at or after ``after``."""
    for line in _lines(lab / "logs" / "serve.log"):
        m = _HTTP.match(line)
        if m and m.group(2) == path and float(m.group(1)) >= after:
            return float(m.group(1))
    return None


def console_uptimes(console: Path) -> tuple[float | None, float | None]:
    """Kernel uptime at the agent's first lookup attempt and at its successful lookup."""
    first = found = None
    for line in _lines(console):
        if first is None and (m := _FIRST_ATTEMPT.match(line)):
            first = float(m.group(1))
        if m := _UPTIME_AT_LOOKUP.match(line):
            found = float(m.group(1))
    return first, found


def phases(lab: Path, node: dict, node_uuid: str, power_on: float) -> dict[str, float | None]:
    """Seconds from power-on to each phase of the boot (None: not seen), and kernel start to lookup."""
    lookup = lookup_time(lab, node_uuid)
    acks = dhcp_times(lab, node["mac"], power_on)
    script = http_time(lab, node["mac"].replace(":", "-") + ".ipxe", power_on)
    initramfs = http_time(lab, "kiln-agent.initramfs", power_on)
    _first, at_lookup = console_uptimes(Path(node["console"]))
    kernel = lookup - at_lookup if lookup is not None and at_lookup is not None else None

    def since(t: float | None) -> float | None:
        return None if t is None else round(t - power_on, 2)

    return {
        "firmware_dhcp": since(acks[0]) if acks else None,
        "ipxe_script": since(script),
        "initramfs_fetch": since(initramfs),
        "kernel_start": since(kernel),
        "ramdisk_dhcp": since(acks[-1]) if len(acks) > 1 else None,
        "lookup": since(lookup),
        "kernel_to_lookup": None if kernel is None or lookup is None else round(lookup - kernel, 2),
    }
