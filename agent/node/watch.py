"""Hardware change triggers: udev (or kernel uevent) monitor, plus a periodic rescan backstop.

The watcher only says "something may have changed"; the daemon re-collects and diffs, so a
spurious trigger costs one collection and sends nothing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

SUBSYSTEMS = ("block", "net", "pci", "drm")
UDEV_CONTROL = "/run/udev/control"
MAX_SETTLE_S = 10.0  # a storm of events still triggers a re-collect this often


def monitor_source(root: str, udev_control: str = UDEV_CONTROL) -> str | None:
    """Pick the event source: "udev" with udevd, "kernel" uevents without it, None for a captured root."""
    if os.path.realpath(root) != "/":
        return None  # events describe this host, not the captured tree
    return "udev" if os.path.exists(udev_control) else "kernel"


class HardwareWatcher:
    """Calls ``on_change(reason)`` after udev events settle and every ``interval`` seconds."""

    def __init__(
        self,
        root: str,
        on_change: Callable[[str], None],
        interval: float,
        settle: float = 1.0,
        source: str | None = "auto",
    ) -> None:
        self.on_change = on_change
        self.interval = interval
        self.settle = settle
        self.source = monitor_source(root) if source == "auto" else source
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the monitor thread (when a source exists) and the rescan thread."""
        monitor = self._open_monitor() if self.source else None
        if monitor is not None:
            self._spawn(self._watch_events, monitor, name="hw-watch-events")
        else:
            self.source = None
        self._spawn(self._rescan, name="hw-watch-rescan")
        LOG.info(
            "Watching hardware: %s events, full rescan every %.1f s",
            self.source or "no",
            self.interval,
        )

    def _spawn(self, target, *args, name: str) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _open_monitor(self):
        try:
            import pyudev

            monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source=self.source)
            if self.source == "udev":  # libudev's socket filter only applies to udev's messages
                for subsystem in SUBSYSTEMS:
                    monitor.filter_by(subsystem)
            monitor.start()
            return monitor
        except Exception as exc:  # noqa: BLE001 - no netlink (container, no libudev): rescan only
            LOG.warning("No %s event monitor (%s); relying on the periodic rescan", self.source, exc)
            return None

    def _watch_events(self, monitor) -> None:
        while not self._stop.is_set():
            try:
                device = monitor.poll(timeout=0.5)
            except Exception as exc:  # noqa: BLE001 - keep watching through a bad message
                LOG.warning("udev monitor error: %s", exc)
                self._stop.wait(1.0)
                continue
            if device is None or device.subsystem not in SUBSYSTEMS:
                continue
            first = f"{device.action} {device.subsystem} {device.sys_name}"
            count = self._settle(monitor)
            self._fire(f"{self.source}: {first}" + (f" (+{count} more)" if count else ""))

    def _settle(self, monitor) -> int:
        """Swallow events until ``settle`` s pass without one; return how many were swallowed."""
        count = 0
        deadline = time.monotonic() + MAX_SETTLE_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            device = monitor.poll(timeout=self.settle) if self.settle > 0 else None
            if device is None:
                break
            count += device.subsystem in SUBSYSTEMS
        return count

    def _rescan(self) -> None:
        while not self._stop.wait(self.interval):
            self._fire("periodic rescan")

    def _fire(self, reason: str) -> None:
        if self._stop.is_set():
            return
        try:
            self.on_change(reason)
        except Exception:  # noqa: BLE001 - the watcher must survive a failed callback
            LOG.exception("Handling hardware change (%s) failed", reason)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop both threads."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
