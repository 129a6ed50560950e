"""Periodic heartbeat casts, each interval spread by jitter so a fleet does not beat in step."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from oslo_log import log as logging

from agent.node.backoff import jittered

LOG = logging.getLogger(__name__)


class Heartbeater:
    """Calls ``beat()`` now and then every ``interval`` +- ``jitter`` seconds until stopped."""

    def __init__(
        self, beat: Callable[[], None], interval: float, jitter: float = 0.1, rng: random.Random | None = None
    ) -> None:
        if interval <= 0:
            raise ValueError(f"heartbeat interval must be positive, got {interval}")
        self.beat = beat
        self.interval = interval
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def next_delay(self) -> float:
        """Seconds until the next heartbeat."""
        return jittered(self.interval, self.jitter, self.rng)

    def start(self) -> None:
        """Start the heartbeat thread."""
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                self.beat()
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - a lost heartbeat is retried at the next beat
                self.failed += 1
                LOG.warning("Heartbeat failed: %s", exc)
            delay = self.next_delay()

    def alive(self) -> bool:
        """Say whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop beating."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
