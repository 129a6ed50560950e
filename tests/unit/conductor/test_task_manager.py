"""Tasks on a real SQLite database: node locks, state changes that persist, spawned work."""

from __future__ import annotations

import threading

import pytest

from agent.common import exception, states
from agent.conductor import task_manager, workers
from agent.conductor.drivers import fake
from agent.db import api as db_api


@pytest.fixture
def node(db):
    """An enrolled fake-hardware node with two ports."""
    created = db_api.create_node({"name": "gpu-01", "driver": "fake-hardware"})
    db_api.create_port({"address": "52:54:00:AA:00:01", "node_id": created.id})
    db_api.create_port({"address": "52:54:00:aa:00:02", "node_id": created.id})
    return created


def _acquire(ident, host="cond-a", **kwargs):
    kwargs.setdefault("retry_attempts", 1)
    return task_manager.acquire({}, ident, host=host, **kwargs)


def test_exclusive_task_reserves_and_releases(node) -> None:
    with _acquire(node.uuid, purpose="test") as task:
        assert task.locked
        assert db_api.get_node(node.uuid).reservation == "cond-a"
        assert task.node.uuid == node.uuid
        assert sorted(p.address for p in task.ports) == ["52:54:00:aa:00:01", "52:54:00:aa:00:02"]
        assert isinstance(task.driver.power, fake.FakePower)
        assert task.driver.interface_names["network"] == "noop"
    assert not task.locked
    assert db_api.get_node(node.uuid).reservation is None


def test_acquire_by_name(node) -> None:
    with _acquire("gpu-01") as task:
        assert task.node.uuid == node.uuid
    assert db_api.get_node(node.uuid).reservation is None


def test_second_acquire_gets_node_locked_naming_holder(node) -> None:
    held = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with _acquire(node.uuid, host="cond-a", purpose="long job"):
            held.set()
            done.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30), "the first acquire never got the lock"
        with pytest.raises(exception.NodeLocked) as info:
            _acquire(node.uuid, host="cond-b")
        assert "cond-a" in str(info.value)
        assert node.uuid in str(info.value)
    finally:
        done.set()
        holder.join()
    assert db_api.get_node(node.uuid).reservation is None


def test_same_host_cannot_lock_twice(node) -> None:
    with _acquire(node.uuid):
        with pytest.raises(exception.NodeLocked, match="cond-a"):
            _acquire(node.uuid)


def test_locked_node_is_retried(node) -> None:
    db_api.reserve_node("cond-z", node.uuid)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            db_api.release_node("cond-z", node.uuid)

    with _acquire(node.uuid, retry_attempts=3, retry_interval=0.5, sleep=sleep) as task:
        assert task.node.reservation == "cond-a"
    assert slept == [0.5, 0.5]


def test_retries_exhausted_raise_node_locked(node) -> None:
    db_api.reserve_node("cond-z", node.uuid)
    slept: list[float] = []
    with pytest.raises(exception.NodeLocked, match="cond-z"):
        _acquire(node.uuid, retry_attempts=3, retry_interval=0.25, sleep=slept.append)
    assert slept == [0.25, 0.25]
    assert db_api.get_node(node.uuid).reservation == "cond-z"


def test_lock_released_when_block_raises(node) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with _acquire(node.uuid):
            raise RuntimeError("boom")
    assert db_api.get_node(node.uuid).reservation is None


def test_lock_released_when_driver_cannot_load(db) -> None:
    bad = db_api.create_node({"driver": "no-such-type"})
    with pytest.raises(exception.DriverNotFound, match="no-such-type"):
        _acquire(bad.uuid)
    assert db_api.get_node(bad.uuid).reservation is None


def test_unknown_node(db) -> None:
    with pytest.raises(exception.NodeNotFound):
        _acquire("nope")


def test_shared_task_takes_no_lock_and_cannot_change(node) -> None:
    db_api.reserve_node("cond-z", node.uuid)
    with _acquire(node.uuid, shared=True) as task:
        assert task.node.reservation == "cond-z"
        with pytest.raises(exception.InvalidState, match="exclusive lock"):
            task.process_event("manage")
        with pytest.raises(exception.InvalidState, match="exclusive lock"):
            task.update_node({"maintenance": True})
    assert db_api.get_node(node.uuid).reservation == "cond-z"


def test_upgrade_lock(node) -> None:
    with _acquire(node.uuid, shared=True) as task:
        task.upgrade_lock("power sync")
        assert db_api.get_node(node.uuid).reservation == "cond-a"
        task.process_event("manage")
    assert db_api.get_node(node.uuid).reservation is None


def test_process_event_persists_states(node) -> None:
    before = db_api.get_node(node.uuid).provision_updated_at
    with _acquire(node.uuid) as task:
        assert task.process_event("manage") == states.VERIFYING
    stored = db_api.get_node(node.uuid)
    assert (stored.provision_state, stored.target_provision_state) == ("verifying", "manageable")
    assert stored.provision_updated_at >= before

    with _acquire(node.uuid) as task:
        task.process_event("done")
    stored = db_api.get_node(node.uuid)
    assert (stored.provision_state, stored.target_provision_state) == ("manageable", None)


def test_fail_sets_last_error_and_next_action_clears_it(node) -> None:
    with _acquire(node.uuid) as task:
        task.process_event("manage")
        task.process_event("fail", last_error="BMC 10.0.0.9 refused the credentials")
    stored = db_api.get_node(node.uuid)
    assert stored.provision_state == "enroll"
    assert stored.target_provision_state is None
    assert stored.last_error == "BMC 10.0.0.9 refused the credentials"

    with _acquire(node.uuid) as task:
        task.process_event("manage")
    assert db_api.get_node(node.uuid).last_error is None


def test_abort_keeps_last_error(node) -> None:
    db_api.update_node(node.uuid, {"provision_state": "clean wait", "last_error": "step erase_devices hung"})
    with _acquire(node.uuid) as task:
        task.process_event("abort")
    stored = db_api.get_node(node.uuid)
    assert (stored.provision_state, stored.target_provision_state) == ("clean failed", "available")
    assert stored.last_error == "step erase_devices hung"


def test_illegal_event_changes_nothing(node) -> None:
    with _acquire(node.uuid) as task:
        with pytest.raises(exception.InvalidStateRequested) as info:
            task.process_event("deploy")
    assert '"deploy"' in str(info.value) and '"enroll"' in str(info.value) and node.uuid in str(info.value)
    stored = db_api.get_node(node.uuid)
    assert (stored.provision_state, stored.reservation) == ("enroll", None)


def test_manual_clean_target(node) -> None:
    db_api.update_node(node.uuid, {"provision_state": "manageable"})
    with _acquire(node.uuid) as task:
        task.process_event("clean", target_state="manageable")
    assert db_api.get_node(node.uuid).target_provision_state == "manageable"


def test_callback_runs_after_block_with_lock_held(node) -> None:
    db_api.update_node(node.uuid, {"provision_state": "available"})
    seen: dict[str, object] = {}

    def deploy(task) -> str:
        seen["reservation"] = db_api.get_node(task.node.uuid).reservation
        seen["state"] = task.node.provision_state
        task.process_event("done")
        return "deployed"

    with _acquire(node.uuid) as task:
        task.process_event("deploy", callback=deploy, call_args=(task,))
        assert "state" not in seen  # not before the block ends
    assert task.future.result() == "deployed"
    assert seen == {"reservation": "cond-a", "state": "deploying"}
    stored = db_api.get_node(node.uuid)
    assert (stored.provision_state, stored.target_provision_state, stored.reservation) == (
        "active",
        None,
        None,
    )


def test_failed_callback_still_releases(node) -> None:
    def broken() -> None:
        raise RuntimeError("image server down")

    with _acquire(node.uuid) as task:
        task.spawn_after(broken)
    with pytest.raises(RuntimeError, match="image server down"):
        task.future.result()
    assert db_api.get_node(node.uuid).reservation is None


def test_no_spawn_when_block_raises(node) -> None:
    ran: list[bool] = []
    with pytest.raises(ValueError):
        with _acquire(node.uuid) as task:
            task.spawn_after(ran.append, True)
            raise ValueError("stop")
    assert task.future is None and ran == []
    assert db_api.get_node(node.uuid).reservation is None


def test_spawn_refused_rolls_back_and_calls_err_handler(node) -> None:
    pool = workers.WorkerPool(1)
    release = threading.Event()
    pool.submit(release.wait, 10)  # the only worker is busy
    old = workers.set_pool(pool)
    handled: list[tuple] = []
    try:
        db_api.update_node(node.uuid, {"provision_state": "available"})
        with pytest.raises(exception.NoFreeConductorWorker):
            with _acquire(node.uuid) as task:
                task.process_event(
                    "deploy",
                    callback=lambda: None,
                    err_handler=lambda t, prev, target: handled.append((prev, target)),
                )
    finally:
        release.set()
        workers.set_pool(old)
        pool.shutdown()
    stored = db_api.get_node(node.uuid)
    assert (stored.provision_state, stored.target_provision_state, stored.reservation) == (
        "available",
        None,
        None,
    )
    assert handled == [("available", None)]


def test_fake_power_remembers_state(node) -> None:
    with _acquire(node.uuid) as task:
        power = task.driver.power
        assert power.get_power_state(task) == states.POWER_OFF
        power.set_power_state(task, states.POWER_ON)
        assert power.get_power_state(task) == states.POWER_ON
        with pytest.raises(exception.InvalidParameterValue, match="cannot set power state"):
            power.set_power_state(task, "sideways")
    with _acquire(node.uuid, shared=True) as task:
        assert task.node.driver_internal_info["fake_power_state"] == "power on"
        assert task.driver.power.get_power_state(task) == "power on"
