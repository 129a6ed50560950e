"""systemd's sd_notify protocol: datagrams to $NOTIFY_SOCKET (READY=1, STATUS=, WATCHDOG=1)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages; does nothing when not started by systemd with Type=notify."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_usec = _watchdog_usec(env)

    @property
    def enabled(self) -> bool:
        """Say whether a notify socket is configured."""
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``fields`` (e.g. "READY=1") as one datagram; say whether it went out."""
        if self.address is None:
            return False
        payload = "\n".join(fields).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(payload)
        except OSError as exc:
            LOG.warning("sd_notify to %r failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd start-up is complete."""
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """Set the one-line status systemctl shows."""
        return self.send(f"STATUS={text.splitlines()[0] if text else ''}")

    def watchdog(self) -> bool:
        """Pet the watchdog."""
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        """Tell systemd the service is shutting down."""
        return self.send("STOPPING=1")

    def watchdog_interval(self) -> float | None:
        """Seconds between two watchdog pets (half of WATCHDOG_USEC), or None when off."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None


def _socket_address(value: str) -> str | None:
    if not value:
        return None
    if value.startswith("@"):  # abstract namespace
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    LOG.warning("Ignoring NOTIFY_SOCKET=%r: neither a path nor an abstract socket", value)
    return None


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None  # meant for another process
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec if usec > 0 else None


class WatchdogPetter:
    """A thread sending WATCHDOG=1 at half the watchdog timeout while ``alive()`` says so."""

    def __init__(self, notifier: Notifier, alive=lambda: True) -> None:
        self.notifier = notifier
        self.alive = alive
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Start petting when systemd asked for a watchdog; say whether it did."""
        interval = self.notifier.watchdog_interval()
        if interval is None or not self.notifier.enabled:
            return False
        self._thread = threading.Thread(target=self._run, args=(interval,), name="sd-watchdog", daemon=True)
        self._thread.start()
        return True

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            if self.alive():
                self.notifier.watchdog()
            else:
                LOG.error("Agent is not healthy; not petting the systemd watchdog")

    def stop(self) -> None:
        """Stop petting."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
