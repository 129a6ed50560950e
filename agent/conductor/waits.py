"""Waits inside Kiln on a node's path, and its BMC calls, logged as JSON lines for benchmarks.

With ``[conductor]wait_timing_log`` set, the conductor appends one line per wait to that file:

    {"node": "<uuid>", "kind": "lock", "start": 1733450000.123, "duration": 0.004, ...}

Kinds: ``lock`` (waiting for a node's lock), ``worker`` (queued for a worker of the pool),
``heartbeat_skip`` (a heartbeat found the node locked, so any step it would have started waits for
a later heartbeat: logged from the last skipped heartbeat to the next one that gets the lock, an
upper bound of that wait; gaps over STALE_SKIP s are dropped), and ``bmc`` (a power or boot-device
call to the node's BMC, which is the BMC's time, not Kiln's). ``start`` is wall-clock (time.time()),
``duration`` seconds. Unset (the default), nothing is timed or written.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from oslo_log import log as logging

from agent.common.config import CONF

LOG = logging.getLogger(__name__)

KINDS = ("lock", "worker", "heartbeat_skip", "bmc")
KILN_KINDS = ("lock", "worker", "heartbeat_skip")
STALE_SKIP = 300.0

_write_lock = threading.Lock()
_skipped: dict[str, float] = {}  # node uuid -> when a heartbeat first found it locked


def log_path() -> str | None:
    """The wait log's path, or None when waits are not logged."""
    return CONF.conductor.wait_timing_log or None


def record(node: str | None, kind: str, start: float, duration: float, **extra: Any) -> None:
    """Append one wait (wall-clock ``start``, ``duration`` s) of ``node`` to the wait log, if one is set."""
    path = log_path()
    if not path or node is None:
        return
    if kind not in KINDS:
        raise ValueError(f"wait kind {kind!r} is not one of {', '.join(KINDS)}")
    line = json.dumps(
        {"node": node, "kind": kind, "start": round(start, 6), "duration": round(duration, 6), **extra}
    )
    try:
        with _write_lock, open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError as exc:  # a benchmark aid: never fail a deploy over it
        LOG.warning("Cannot write [conductor]wait_timing_log %s: %s", path, exc)


@contextlib.contextmanager
def timed(node: str | None, kind: str, **extra: Any) -> Iterator[None]:
    """Record the time spent in the ``with`` block as a wait of ``kind`` (when the log is set)."""
    if not log_path():
        yield
        return
    start, began = time.time(), time.monotonic()
    try:
        yield
    finally:
        record(node, kind, start, time.monotonic() - began, **extra)


def bmc_call(func: Callable) -> Callable:
    """Decorate a power/management interface method ``(self, task, ...)``: log its time as ``bmc``."""

    @functools.wraps(func)
    def wrapper(self, task, *args: Any, **kwargs: Any) -> Any:
        node = getattr(getattr(task, "node", None), "uuid", None)
        with timed(node, "bmc", call=func.__name__):
            return func(self, task, *args, **kwargs)

    return wrapper


def heartbeat_skipped(node: str) -> None:
    """A heartbeat found ``node`` locked: its hook waits for a later heartbeat (logged when one gets in)."""
    if log_path():
        _skipped[node] = time.time()


def heartbeat_taken(node: str) -> None:
    """A heartbeat got ``node``'s lock: log the wait since the last skipped one, if recent."""
    since = _skipped.pop(node, None)
    if since is not None and time.time() - since < STALE_SKIP:
        record(node, "heartbeat_skip", since, time.time() - since)


def read(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The waits of a wait log file, one dict per line; ValueError naming a bad line."""
    with open(path, encoding="utf-8") as f:
        return parse(f.read(), str(path))


def parse(text: str, where: str = "wait log") -> list[dict[str, Any]]:
    """The waits of a wait log's text (blank lines skipped); ValueError naming ``where`` and a bad line."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            float(entry["start"]), float(entry["duration"]), entry["node"], entry["kind"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{where}:{number}: not a wait record ({exc}): {line.strip()[:200]}") from exc
        entries.append(entry)
    return entries
