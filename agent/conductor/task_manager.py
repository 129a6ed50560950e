"""Tasks: one node, its ports and its composed driver, held under the node's lock for one operation.

    with task_manager.acquire(context, node_uuid, purpose="deploy") as task:
        task.driver.power.set_power_state(task, states.POWER_ON)
        task.process_event("deploy", callback=do_deploy, call_args=(task,))

An exclusive task reserves the node in the database (``reservation`` = this conductor's host);
a second conductor, or a second task here, gets NodeLocked naming the holder. A shared task
takes no lock and may only read. Work handed to ``spawn_after`` (or ``process_event(callback=)``)
runs on a worker of the conductor's pool (agent.conductor.workers) after the ``with`` block, and
the lock is released when it finishes. When no worker is free, ``spawn_after`` work is refused with
NoFreeConductorWorker (the node's state is rolled back); ``queue_after`` work waits its turn.

A task waiting for a node's lock is woken as soon as a task of this process releases a lock (no
fixed sleep); a lock held by another conductor is tried again every node_locked_retry_interval.
With ``lock_timeout`` the wait lasts that long instead of a number of attempts (the agent's step
results use it: a result must not be lost because the worker that started the step still holds
the lock). Lock and worker waits go to the wait log (agent.conductor.waits) when it is set.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

from automaton import exceptions as automaton_exc
from oslo_log import log as logging

from agent.common import exception, states
from agent.common.config import CONF
from agent.conductor import node_history, waits, workers
from agent.conductor.drivers import driver_factory
from agent.db import api as db_api
from agent.metrics import conductor as metrics

LOG = logging.getLogger(__name__)


# Notified whenever a task of this process releases a node's lock: lock waiters try again at once.
_released = threading.Condition()
_release_count = 0


def _notify_released() -> None:
    global _release_count
    with _released:
        _release_count += 1
        _released.notify_all()


def releases() -> int:
    """How many node locks tasks of this process have released so far (for ``wait_for_release``)."""
    return _release_count


def wait_for_release(seen: int, timeout: float) -> None:
    """Sleep until a lock of this process is released after ``seen`` releases, or ``timeout`` s pass."""
    with _released:
        _released.wait_for(lambda: _release_count != seen, timeout)


def abandon_spawned_work() -> None:
    """On shutdown: run no more queued work and stop waiting for what runs (later calls get a new pool)."""
    pool = workers.set_pool(None)
    if pool is not None:
        pool.shutdown(wait=False, cancel=True)


def _exclusive_required(action: str, node: str) -> exception.KilnException:
    return exception.InvalidState(
        reason=f"{action} on node {node} needs an exclusive lock, but this task holds a shared one"
    )


class TaskManager:
    """A node held for one operation; use as a context manager (see ``acquire``)."""

    def __init__(
        self,
        context: Any,
        node_ident: str,
        shared: bool = False,
        purpose: str = "unspecified action",
        host: str | None = None,
        retry_attempts: int | None = None,
        retry_interval: float | None = None,
        load_driver: bool = True,
        sleep: Callable[[float], None] | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        self.context = context
        self.node_ident = node_ident
        self.shared = shared
        self.purpose = purpose
        self.host = host or CONF.conductor.host
        self.node: Any = None
        self.ports: list[Any] = []
        self._portgroups: list[Any] | None = None
        self.driver: driver_factory.ComposedDriver | None = None
        self.future: concurrent.futures.Future | None = None  # a workers.Job once spawned
        self._attempts = retry_attempts or CONF.conductor.node_locked_retry_attempts
        self._interval = (
            CONF.conductor.node_locked_retry_interval if retry_interval is None else retry_interval
        )
        self._sleep = sleep  # None: wait for a release in this process (at most the interval)
        self._lock_timeout = lock_timeout
        self._locked = False
        self._lock_started = 0.0
        self._spawn: tuple[Callable, tuple, dict] | None = None
        self._spawn_queued = False
        self._on_spawn_error: Callable | None = None
        self._prev_states: tuple[str | None, str | None] | None = None
        try:
            if shared:
                self.node = db_api.get_node(node_ident)
            else:
                self._lock()
            self.ports = db_api.list_ports(node_id=self.node.id)
            if load_driver:
                self.driver = driver_factory.build_driver_for_task(self)
        except Exception:
            self.release_resources()
            raise

    # --- locking --------------------------------------------------------------------------------

    def _lock(self) -> None:
        last: exception.NodeLocked | None = None
        start, began = time.time(), time.monotonic()
        deadline = None if self._lock_timeout is None else began + self._lock_timeout
        attempt = 0
        while True:
            attempt += 1
            seen = _release_count
            try:
                self.node = db_api.reserve_node(self.host, self.node_ident)
            except exception.NodeLocked as exc:
                last = exc
                LOG.debug("Attempt %d to lock node %s failed: %s", attempt, self.node_ident, exc)
                left = (self._attempts - attempt) if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    break
                pause = self._interval if deadline is None else min(self._interval or 1.0, left)
                if self._sleep is not None:
                    self._sleep(pause)
                else:
                    wait_for_release(seen, pause)
                continue
            self._locked = True
            self._lock_started = time.monotonic()
            if attempt > 1:
                waits.record(self.node.uuid, "lock", start, self._lock_started - began, purpose=self.purpose)
            LOG.debug("Node %s locked by %s for %s", self.node.uuid, self.host, self.purpose)
            return
        assert last is not None
        waits.record(
            getattr(last, "node", None) or self.node_ident,
            "lock",
            start,
            time.monotonic() - began,
            purpose=self.purpose,
            gave_up=True,
        )
        raise last

    def upgrade_lock(self, purpose: str | None = None) -> None:
        """Turn a shared task into an exclusive one (no-op when already exclusive)."""
        if not self.shared:
            return
        self.purpose = purpose or self.purpose
        self.node_ident = self.node.uuid
        self._lock()
        self.shared = False

    def release_resources(self) -> None:
        """Release the node's lock (if held); safe to call twice."""
        if not self._locked:
            return
        self._locked = False
        uuid = self.node.uuid
        try:
            db_api.release_node(self.host, uuid)
        except (exception.NodeNotLocked, exception.NodeNotFound) as exc:
            LOG.warning("Releasing node %s after %s: %s", uuid, self.purpose, exc)
        else:
            _notify_released()
            LOG.debug(
                "Node %s released by %s after %s (held %.2fs)",
                uuid,
                self.host,
                self.purpose,
                time.monotonic() - self._lock_started,
            )

    @property
    def locked(self) -> bool:
        """Whether this task currently holds the node's exclusive lock."""
        return self._locked

    # --- changes --------------------------------------------------------------------------------

    def update_node(self, values: dict[str, Any]) -> Any:
        """Persist ``values`` on the node (exclusive tasks only) and refresh ``task.node``."""
        if self.shared:
            raise _exclusive_required("Updating", self.node.uuid)
        error = values.get("last_error")
        recorded = bool(error) and error != self.node.last_error
        before = self.node
        self.node = db_api.update_node(self.node.uuid, values)
        if recorded:  # a new error: it goes into the node's history, as Ironic's error handlers do
            node_history.record(
                self.node,
                error,
                node_history.event_type_for(before.provision_state),
                context=self.context,
                host=self.host,
                before=before,
            )
        return self.node

    def refresh(self) -> None:
        """Re-read the node and its ports from the database."""
        self.node = db_api.get_node(self.node.uuid)
        self.ports = db_api.list_ports(node_id=self.node.id)
        self._portgroups = None

    @property
    def portgroups(self) -> list[Any]:
        """The node's portgroups, read on first use (most tasks never need them)."""
        if self._portgroups is None:
            self._portgroups = db_api.list_portgroups(node_id=self.node.id)
        return self._portgroups

    def spawn_after(self, func: Callable, *args: Any, **kwargs: Any) -> None:
        """Run ``func(*args, **kwargs)`` on a worker after the ``with`` block, lock held until it ends.

        Refused with NoFreeConductorWorker when every worker is busy (an operator's action).
        """
        self._spawn = (func, args, kwargs)
        self._spawn_queued = False
        self._prev_states = None

    def queue_after(self, func: Callable, *args: Any, **kwargs: Any) -> None:
        """As ``spawn_after``, but when every worker is busy the work waits its turn (FIFO), lock held.

        For the next step of an operation under way (an agent's heartbeat or step result).
        """
        self.spawn_after(func, *args, **kwargs)
        self._spawn_queued = True

    def set_spawn_error_hook(self, handler: Callable, *args: Any, **kwargs: Any) -> None:
        """Call ``handler(error, *args, **kwargs)`` if the spawned work cannot be started."""
        self._on_spawn_error = lambda err: handler(err, *args, **kwargs)

    def process_event(
        self,
        event: str,
        callback: Callable | None = None,
        call_args: tuple = (),
        call_kwargs: dict[str, Any] | None = None,
        err_handler: Callable | None = None,
        target_state: str | None = None,
        last_error: str | None = None,
    ) -> str:
        """Advance the node's provision state along ``event`` and persist it; return the new state.

        Saves provision_state, target_provision_state (provision_updated_at follows) and last_error:
        a "fail"/"abort" or a move into a failure state keeps the last error (or sets
        ``last_error``); any other move clears it unless ``last_error`` is given. ``callback`` is
        spawned after the ``with`` block; if it cannot start, the states are rolled back, then
        ``err_handler(task, prev_state, prev_target)`` runs.
        """
        if self.shared:
            raise _exclusive_required(f'Provision event "{event}"', self.node.uuid)
        current = self.node.provision_state
        try:
            machine = states.new_machine(current, self._valid_target(self.node.target_provision_state))
            machine.process_event(event, target_state=target_state)
        except automaton_exc.NotFound:
            raise exception.InvalidStateRequested(action=event, node=self.node.uuid, state=current) from None
        except exception.InvalidState as exc:
            raise exception.InvalidStateRequested(
                f'Cannot process "{event}" on node {self.node.uuid} in state "{current}": {exc}'
            ) from None
        new_state = machine.current_state
        target = machine.target_state
        if callback is None and machine.is_stable(new_state):
            target = states.NOSTATE
        values: dict[str, Any] = {"provision_state": new_state, "target_provision_state": target}
        failing = (
            event in ("fail", "abort") or new_state in states.FAILURE_STATES or new_state == states.ERROR
        )
        if last_error is not None:
            values["last_error"] = last_error
        elif not failing:
            values["last_error"] = None
        prev = (current, self.node.target_provision_state)
        entered_at = self.node.provision_updated_at
        self.update_node(values)
        metrics.provision_transition(current, new_state, entered_at, self.node.provision_updated_at)
        LOG.info(
            "Node %s moved from %s to %s (event %s, target %s)",
            self.node.uuid,
            current,
            new_state,
            event,
            target,
        )
        if callback is not None:
            self.spawn_after(callback, *call_args, **(call_kwargs or {}))
            self._prev_states = prev
            if err_handler is not None:
                self.set_spawn_error_hook(lambda _err: err_handler(self, prev[0], prev[1]))
        return new_state

    @staticmethod
    def _valid_target(target: str | None) -> str | None:
        return target if target in states.STABLE_STATES else None

    # --- context manager ------------------------------------------------------------------------

    def __enter__(self) -> TaskManager:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if exc_type is not None or self._spawn is None:
            self.release_resources()
            return
        func, args, kwargs = self._spawn
        self._spawn = None
        self._queued_at = (time.time(), time.monotonic())
        try:
            self.future = workers.get_pool().submit(
                self._run_spawned, func, args, kwargs, queue=self._spawn_queued
            )
        except Exception as err:
            if isinstance(err, exception.NoFreeConductorWorker):
                LOG.warning("Node %s: %s refused: no free conductor worker", self.node.uuid, self.purpose)
            else:
                LOG.exception("Node %s: could not start %s: %s", self.node.uuid, self.purpose, err)
            try:
                if self._prev_states is not None:
                    prev_state, prev_target = self._prev_states
                    self.update_node({"provision_state": prev_state, "target_provision_state": prev_target})
                if self._on_spawn_error is not None:
                    self._on_spawn_error(err)
            finally:
                self.release_resources()
            raise

    def _run_spawned(self, func: Callable, args: tuple, kwargs: dict) -> Any:
        start, began = self._queued_at
        waits.record(self.node.uuid, "worker", start, time.monotonic() - began, purpose=self.purpose)
        try:
            return func(*args, **kwargs)
        except Exception:
            LOG.exception("Node %s: %s failed in the background", self.node.uuid, self.purpose)
            raise
        finally:
            self.release_resources()


def acquire(
    context: Any,
    node_ident: str,
    shared: bool = False,
    purpose: str = "unspecified action",
    **kwargs: Any,
) -> TaskManager:
    """Hold node ``node_ident`` (UUID or name) for ``purpose``; exclusive unless ``shared``.

    Retries a locked node [conductor]node_locked_retry_attempts times, woken when this process
    releases a lock and at most node_locked_retry_interval seconds apart (or for ``lock_timeout``
    seconds when given), then raises NodeLocked naming the holder.
    """
    return TaskManager(context, node_ident, shared=shared, purpose=purpose, **kwargs)
