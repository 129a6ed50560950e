"""[conductor]wait_timing_log on a real SQLite database: lock and worker waits, lock wake-ups."""

from __future__ import annotations

import threading
import time

import pytest
from oslo_config import cfg

from agent.common import exception
from agent.conductor import task_manager, waits, workers
from agent.db import api as db_api


@pytest.fixture
def node(db):
    """An enrolled fake-hardware node."""
    return db_api.create_node({"name": "gpu-01", "driver": "fake-hardware"})


@pytest.fixture
def wait_log(tmp_path):
    """Turn the wait log on, in tmp_path; off again afterwards."""
    path = tmp_path / "waits.jsonl"
    cfg.CONF.set_override("wait_timing_log", str(path), group="conductor")
    yield path
    cfg.CONF.clear_override("wait_timing_log", group="conductor")


def _hold(uuid: str, seconds: float, host: str = "cond-a") -> tuple[threading.Thread, threading.Event]:
    """Hold ``uuid``'s lock in a task of this process for ``seconds`` on a thread; return it and 'held'."""
    held = threading.Event()

    def run() -> None:
        with task_manager.acquire({}, uuid, host=host, retry_attempts=1, purpose="holder"):
            held.set()
            time.sleep(seconds)

    t = threading.Thread(target=run)
    t.start()
    assert held.wait(30), "the holder never got the lock"
    return t, held


def test_nothing_written_when_unset(node, tmp_path) -> None:
    path = tmp_path / "waits.jsonl"
    cfg.CONF.set_override("wait_timing_log", str(path), group="conductor")
    cfg.CONF.clear_override("wait_timing_log", group="conductor")
    assert waits.log_path() is None
    waits.record(node.uuid, "lock", time.time(), 1.0)
    with waits.timed(node.uuid, "bmc"):
        pass
    with task_manager.acquire({}, node.uuid, host="cond-a", retry_attempts=1):
        pass
    assert not path.exists()


def test_lock_waiter_is_woken_at_release_and_logged(node, wait_log) -> None:
    holder, _ = _hold(node.uuid, 0.6)
    began = time.monotonic()
    # A 10 s retry interval: only the wake-up at release can get the lock within a second.
    with task_manager.acquire({}, node.uuid, host="cond-a", retry_attempts=3, retry_interval=10.0) as task:
        waited = time.monotonic() - began
        assert task.locked
    holder.join()
    assert 0.3 < waited < 3.0, f"lock taken after {waited:.2f} s; the holder let go after 0.6 s"
    locks = [w for w in waits.read(wait_log) if w["kind"] == "lock"]
    assert len(locks) == 1, locks
    assert locks[0]["node"] == node.uuid
    assert abs(locks[0]["duration"] - waited) < 0.2
    assert locks[0]["purpose"] == "unspecified action"


def test_lock_timeout_outlasts_attempts(node, wait_log) -> None:
    # A step result waits for its lock for lock_timeout seconds, not retry_attempts x interval.
    holder, _ = _hold(node.uuid, 1.5)
    with task_manager.acquire(
        {}, node.uuid, host="cond-a", retry_attempts=1, retry_interval=0.1, lock_timeout=30
    ) as task:
        assert task.locked
    holder.join()
    (lock,) = [w for w in waits.read(wait_log) if w["kind"] == "lock"]
    assert 1.0 < lock["duration"] < 4.0


def test_lock_timeout_gives_up_naming_holder(node, wait_log) -> None:
    db_api.reserve_node("cond-z", node.uuid)  # another conductor: no wake-up, polled each interval
    began = time.monotonic()
    with pytest.raises(exception.NodeLocked, match="cond-z"):
        task_manager.acquire({}, node.uuid, host="cond-a", retry_interval=0.1, lock_timeout=0.5)
    assert 0.4 < time.monotonic() - began < 3.0
    (lock,) = waits.read(wait_log)
    assert lock["gave_up"] is True and lock["kind"] == "lock"


def test_worker_wait_is_logged(node, wait_log) -> None:
    pool = workers.WorkerPool(2)
    old = workers.set_pool(pool)
    try:
        ran = threading.Event()
        with task_manager.acquire({}, node.uuid, host="cond-a", retry_attempts=1, purpose="deploy") as task:
            task.spawn_after(ran.set)
        assert ran.wait(30)
        assert pool.wait_idle(30)
    finally:
        workers.set_pool(old)
        pool.shutdown()
    (worker,) = [w for w in waits.read(wait_log) if w["kind"] == "worker"]
    assert worker["node"] == node.uuid and worker["purpose"] == "deploy"
    assert 0 <= worker["duration"] < 5


def test_heartbeat_skip_spans_skipped_to_taken(node, wait_log) -> None:
    waits.heartbeat_skipped(node.uuid)
    time.sleep(0.2)
    waits.heartbeat_taken(node.uuid)
    waits.heartbeat_taken(node.uuid)  # nothing pending: nothing logged
    (skip,) = waits.read(wait_log)
    assert skip["kind"] == "heartbeat_skip" and 0.15 < skip["duration"] < 2


def test_read_names_a_bad_line(tmp_path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('{"node": "n", "kind": "lock", "start": 1, "duration": 2}\n\n{"node": "n"}\n')
    with pytest.raises(ValueError, match=r"w\.jsonl:3: not a wait record"):
        waits.read(path)


def test_unknown_kind_refused(wait_log) -> None:
    with pytest.raises(ValueError, match="nap"):
        waits.record("n", "nap", 0.0, 1.0)
