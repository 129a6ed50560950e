"""The conductor's worker pool: where the slow part of every flow runs, as Ironic's ``_spawn_worker``.

A provision or power verb moves the node's state in the RPC thread and hands the rest (power
actions, booting the agent, the deploy and clean steps) to a worker; so do the agent's heartbeats
and step results that move a waiting node on. [conductor]workers_pool_size threads run that work,
so one conductor deploys and cleans that many nodes at once.

Two ways in, one queue:

- ``submit(..., queue=False)``: an operator's verb. When every worker is taken (running or already
  queued work), it is refused with NoFreeConductorWorker, which the API answers with 503, as
  Ironic does; the caller rolls the node back, and the operator retries.
- ``submit(..., queue=True)``: the next step of an operation already under way (an agent's
  heartbeat or step result). It is never refused: it waits in the queue, first in first out, so
  no node's deployment or cleaning starves while others run. Each holds its node's lock, so the
  queue holds at most one entry per node.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from oslo_log import log as logging

from agent.common import exception

LOG = logging.getLogger(__name__)


class Job(concurrent.futures.Future):
    """A Future that also records when its work started and ended (time.monotonic())."""

    started_at: float | None = None
    ended_at: float | None = None


class WorkerPool:
    """``size`` threads; a verb is refused when all are taken, a continuation waits its turn (FIFO)."""

    def __init__(self, size: int, name: str = "kiln-worker") -> None:
        if size < 1:
            raise ValueError(f"a worker pool needs at least 1 worker, not {size}")
        self.size = size
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._outstanding = 0  # submitted, not finished (running + queued)
        self._running = 0
        self.peak_running = 0

    def free(self) -> int:
        """Workers neither running nor promised to queued work."""
        with self._lock:
            return max(0, self.size - self._outstanding)

    def stats(self) -> dict[str, int]:
        """{"size", "running", "queued", "peak_running"} now."""
        with self._lock:
            return {
                "size": self.size,
                "running": self._running,
                "queued": self._outstanding - self._running,
                "peak_running": self.peak_running,
            }

    def submit(self, func: Callable, *args: Any, queue: bool = False, **kwargs: Any) -> Job:
        """Run ``func(*args, **kwargs)`` on a worker; without ``queue``, refuse when none is free."""
        with self._lock:
            if not queue and self._outstanding >= self.size:
                raise exception.NoFreeConductorWorker()
            self._outstanding += 1
        job = Job()
        try:
            self._executor.submit(self._run, job, func, args, kwargs)
        except Exception:
            self._finished(False)
            raise
        return job

    def _run(self, job: Job, func: Callable, args: tuple, kwargs: dict) -> None:
        if not job.set_running_or_notify_cancel():
            self._finished(False)
            return
        with self._lock:
            self._running += 1
            self.peak_running = max(self.peak_running, self._running)
        job.started_at = time.monotonic()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the job
            job.ended_at = time.monotonic()
            self._finished(True)
            job.set_exception(exc)
        else:
            job.ended_at = time.monotonic()
            self._finished(True)
            job.set_result(result)

    def _finished(self, ran: bool) -> None:
        with self._lock:
            self._outstanding -= 1
            if ran:
                self._running -= 1
            if self._outstanding == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no work runs or waits (at most ``timeout`` s); say whether it is idle."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    def shutdown(self, wait: bool = True, cancel: bool = False) -> None:
        """Take no more work; ``wait``: let submitted work finish; ``cancel``: drop what is queued."""
        self._executor.shutdown(wait=wait, cancel_futures=cancel)


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> WorkerPool:
    """This process's pool, of [conductor]workers_pool_size workers (made on first use)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            from agent.common.config import CONF

            _pool = WorkerPool(CONF.conductor.workers_pool_size)
        return _pool


def set_pool(pool: WorkerPool | None) -> WorkerPool | None:
    """Use ``pool`` from now on (None: a new one of workers_pool_size on next use); return the old one."""
    global _pool
    with _pool_lock:
        old, _pool = _pool, pool
    return old


def _forget_after_fork() -> None:
    # A forked child (the heartbeat process) has none of its parent's threads: it makes its own pool.
    global _pool, _pool_lock
    _pool_lock = threading.Lock()
    _pool = None


os.register_at_fork(after_in_child=_forget_after_fork)
