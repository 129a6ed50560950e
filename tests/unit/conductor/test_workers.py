"""The conductor's worker pool: deploys run at once up to [conductor]workers_pool_size, a verb past
that is refused with NoFreeConductorWorker, and the agents' continuations wait their turn in order.

Real ConductorManager, task manager and flows on SQLite; fake-hardware nodes whose fake power takes
[fake]power_delay seconds per action, as a slow BMC would, so that each deploy holds its worker.
"""

from __future__ import annotations

import time

import oslo_messaging as messaging
import pytest

from agent.common import exception, states
from agent.common.config import CONF
from agent.conductor import deployments, task_manager, workers
from agent.conductor.manager import ConductorManager
from agent.db import api as db_api

HOST = "pool-conductor"
POWER_DELAY = 0.5


@pytest.fixture
def conductor(db):
    """A ConductorManager whose pool is built from the options this test sets."""
    CONF.set_override("host", HOST, group="conductor")
    CONF.set_override("power_delay", POWER_DELAY, group="fake")
    db_api.register_conductor(HOST, ["fake-hardware"])
    old = workers.set_pool(None)
    yield ConductorManager(HOST)
    pool = workers.set_pool(old)
    if pool is not None:
        pool.wait_idle(30)
        pool.shutdown()
    CONF.clear_override("host", group="conductor")
    CONF.clear_override("power_delay", group="fake")
    CONF.clear_override("workers_pool_size", group="conductor")


def _nodes(count: int) -> list[str]:
    return [
        db_api.create_node(
            {"name": f"pool-{i}", "driver": "fake-hardware", "provision_state": states.AVAILABLE}
        ).uuid
        for i in range(count)
    ]


def test_a_third_deploy_is_refused_while_two_workers_are_busy(conductor) -> None:
    CONF.set_override("workers_pool_size", 2, group="conductor")
    CONF.set_override("power_delay", 1.0, group="fake")  # each deploy holds its worker 1 s
    first, second, third = _nodes(3)
    conductor.change_provision_state({}, first, "active")
    conductor.change_provision_state({}, second, "active")
    with pytest.raises(messaging.ExpectedException) as wrapped:  # as the RPC server hands it on
        conductor.change_provision_state({}, third, "active")
    refused = wrapped.value.exc_info[1]
    assert isinstance(refused, exception.NoFreeConductorWorker)
    assert refused.code == 503
    assert "workers_pool_size" in str(refused)
    node = db_api.get_node(third)  # left as it was: nothing to undo
    assert (node.provision_state, node.target_provision_state, node.reservation, node.last_error) == (
        states.AVAILABLE,
        None,
        None,
        None,
    )
    assert workers.get_pool().wait_idle(30)
    assert [db_api.get_node(u).provision_state for u in (first, second)] == [states.ACTIVE] * 2
    conductor.change_provision_state({}, third, "active")  # a worker is free again
    assert workers.get_pool().wait_idle(30)
    assert db_api.get_node(third).provision_state == states.ACTIVE


def test_deploys_overlap_in_time(conductor) -> None:
    CONF.set_override("workers_pool_size", 4, group="conductor")
    jobs = []
    for uuid in _nodes(4):
        with task_manager.acquire({}, uuid, purpose="deploy", host=HOST) as task:
            deployments.start_deploy(task, "deploy")
        jobs.append(task.future)
    for job in jobs:
        job.result(timeout=30)
    starts = [job.started_at for job in jobs]
    ends = [job.ended_at for job in jobs]
    # Each deploy took at least one power action's time, and all four were running at one instant:
    # run one after another, the last would have started after the first ended.
    assert all(end - start >= POWER_DELAY for start, end in zip(starts, ends, strict=True))
    assert max(starts) < min(ends), (starts, ends)
    assert workers.get_pool().stats()["peak_running"] == 4


def test_continuations_past_the_pool_wait_their_turn_in_order(conductor) -> None:
    CONF.set_override("workers_pool_size", 2, group="conductor")
    uuids = _nodes(6)
    jobs = []
    for uuid in uuids:  # as six heartbeats of waiting nodes would: none refused, lock held meanwhile
        with task_manager.acquire({}, uuid, purpose="agent heartbeat", host=HOST) as task:
            task.queue_after(time.sleep, 0.3)
        jobs.append(task.future)
    assert workers.get_pool().stats()["queued"] >= 1
    for job in jobs:
        job.result(timeout=30)
    starts = [job.started_at for job in jobs]
    assert starts == sorted(starts)  # first in, first out: no node starves
    for job in jobs:  # never more than workers_pool_size at once
        running = sum(1 for other in jobs if other.started_at <= job.started_at < other.ended_at)
        assert running <= 2, running
    assert all(db_api.get_node(u).reservation is None for u in uuids)
