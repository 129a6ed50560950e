"""Background LLDP listener: one raw AF_PACKET socket per link; never delays start-up or a report."""

from __future__ import annotations

import copy
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable

from oslo_log import log as logging

from agent.inventory import lldp

LOG = logging.getLogger(__name__)
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_MULTICAST = 0


def physical_links(sys_class_net: str = "/sys/class/net") -> list[str]:
    """Links backed by a device (NICs), not lo, bridges, veths or bonds."""
    try:
        names = os.listdir(sys_class_net)
    except OSError:
        return []
    return sorted(n for n in names if os.path.exists(os.path.join(sys_class_net, n, "device")))


def open_socket(ifname: str) -> socket.socket:
    """A raw socket receiving LLDP frames on ``ifname`` (member of the LLDP multicast group)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(lldp.ETH_P_LLDP))
    try:
        sock.bind((ifname, lldp.ETH_P_LLDP))
        mreq = struct.pack(
            "iHH8s", socket.if_nametoindex(ifname), PACKET_MR_MULTICAST, 6, lldp.LLDP_MULTICAST
        )
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class LLDPListener:
    """Keeps the last LLDP frame heard on each link, parsed; ``on_change(ifname)`` when it changes."""

    def __init__(
        self,
        interfaces: list[str] | None = None,
        on_change: Callable[[str], None] | None = None,
        rescan_s: float = 30.0,
    ) -> None:
        self.fixed = list(interfaces or [])
        self.on_change = on_change
        self.rescan_s = rescan_s
        self._sockets: dict[str, socket.socket] = {}
        self._failed: dict[str, str] = {}
        self._seen: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start listening in a daemon thread (returns at once)."""
        self._thread = threading.Thread(target=self._loop, name="lldp-listener", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop listening and close the sockets."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def _open_links(self) -> None:
        for ifname in self.fixed or physical_links():
            if ifname in self._sockets:
                continue
            try:
                self._sockets[ifname] = open_socket(ifname)
                self._failed.pop(ifname, None)
            except OSError as exc:
                if self._failed.get(ifname) != str(exc):
                    LOG.warning("LLDP: cannot listen on %s: %s", ifname, exc)
                self._failed[ifname] = str(exc)

    def _loop(self) -> None:
        next_scan = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_scan:
                self._open_links()
                next_scan = now + self.rescan_s
            socks = list(self._sockets.items())
            if not socks:
                self._stop.wait(min(self.rescan_s, 1.0))
                continue
            try:
                ready, _, _ = select.select([s for _, s in socks], [], [], 0.5)
            except (OSError, ValueError):
                self._drop_closed()
                continue
            for ifname, sock in socks:
                if sock in ready:
                    self._receive(ifname, sock)

    def _drop_closed(self) -> None:
        for ifname, sock in list(self._sockets.items()):
            if sock.fileno() < 0:
                del self._sockets[ifname]

    def _receive(self, ifname: str, sock: socket.socket) -> None:
        try:
            frame = sock.recv(9000)
        except BlockingIOError:
            return
        except OSError as exc:  # the link went away: reopen on the next scan
            LOG.info("LLDP: %s stopped receiving (%s)", ifname, exc)
            sock.close()
            self._sockets.pop(ifname, None)
            return
        parsed = lldp.parse_frame(frame)
        if parsed is None:
            return
        with self._lock:
            old = self._seen.get(ifname)
            changed = old is None or old.get("raw") != parsed.get("raw")
            parsed["received_at"] = time.time()
            self._seen[ifname] = parsed
        if changed:
            LOG.info(
                "LLDP on %s: switch %s port %s (%s)",
                ifname,
                parsed.get("switch_chassis_id"),
                parsed.get("switch_port_id"),
                parsed.get("switch_system_name"),
            )
            if self.on_change is not None:
                try:
                    self.on_change(ifname)
                except Exception:  # noqa: BLE001 - a callback must not stop the listener
                    LOG.exception("LLDP change callback failed")

    def wait_heard(self, timeout: float, stop: threading.Event | None = None) -> list[str]:
        """Wait up to ``timeout`` s until every link listened on has been heard; return those still silent."""
        deadline = time.monotonic() + timeout
        while True:
            links = self.fixed or physical_links()
            with self._lock:
                silent = [name for name in links if name not in self._seen]
            if not silent or time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                return silent
            time.sleep(0.2)

    def snapshot(self) -> dict[str, dict]:
        """{ifname: parsed LLDP with "raw"} for every link heard so far."""
        with self._lock:
            return copy.deepcopy(self._seen)

    def merge(self, inventory: dict) -> dict:
        """Put what was heard into ``inventory["lldp"]`` (kept entries for links not heard yet)."""
        seen = self.snapshot()
        for data in seen.values():
            data.pop("received_at", None)  # keeps reports free of churn
        lldp_section = dict(inventory.get("lldp") or {})
        lldp_section.update(seen)
        inventory["lldp"] = lldp_section
        return inventory
