"""Retry with exponential backoff, interruptible by a stop event."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from oslo_log import log as logging

LOG = logging.getLogger(__name__)
T = TypeVar("T")


class Stopped(Exception):
    """The agent is stopping: a retry loop gave up waiting."""


class GaveUp(Exception):
    """A retry loop used all its attempts; ``last`` is the final error."""

    def __init__(self, what: str, attempts: int, last: BaseException) -> None:
        super().__init__(f"{what} failed {attempts} times, giving up; last error: {last}")
        self.last = last


@dataclass(frozen=True)
class Backoff:
    """Delays ``initial * factor**n`` capped at ``maximum``, each spread by +- ``jitter``."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum <= 0:
            raise ValueError(
                f"backoff delays must be positive, got initial={self.initial} max={self.maximum}"
            )
        if self.factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"backoff jitter must be in [0, 1), got {self.jitter}")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Yield the delays before retry 1, 2, ... forever."""
        rng = rng or random.Random()
        base = min(self.initial, self.maximum)
        while True:
            yield jittered(base, self.jitter, rng)
            base = min(base * self.factor, self.maximum)


def jittered(interval: float, fraction: float, rng: random.Random | None = None) -> float:
    """Return ``interval`` moved by a uniform random amount within +- ``fraction`` of it."""
    if interval < 0:
        raise ValueError(f"interval must be >= 0, got {interval}")
    if not 0 <= fraction < 1:
        raise ValueError(f"jitter fraction must be in [0, 1), got {fraction}")
    rng = rng or random
    return interval * (1.0 + rng.uniform(-fraction, fraction))


def retry(
    fn: Callable[[], T],
    *,
    what: str,
    stop: threading.Event,
    backoff: Backoff,
    attempts: int = 0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    rng: random.Random | None = None,
) -> T:
    """Call ``fn`` until it returns, sleeping per ``backoff`` between failures.

    ``attempts`` 0 retries forever. Raises ``Stopped`` once ``stop`` is set and
    ``GaveUp`` after ``attempts`` failures; errors outside ``retry_on`` propagate.
    """
    delays = backoff.delays(rng)
    tried = 0
    while True:
        if stop.is_set():
            raise Stopped(what)
        tried += 1
        try:
            return fn()
        except retry_on as exc:
            if attempts and tried >= attempts:
                raise GaveUp(what, tried, exc) from exc
            delay = next(delays)
            LOG.warning("%s failed (attempt %d): %s; retrying in %.1f s", what, tried, exc, delay)
        if stop.wait(delay):
            raise Stopped(what)
