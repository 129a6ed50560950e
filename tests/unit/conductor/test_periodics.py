"""Periodic passes on a real SQLite database: silent agents, dead conductors, the hash ring."""

from __future__ import annotations

import datetime
import os

import pytest
from oslo_config import cfg

from agent.common import config, states
from agent.conductor import hash_ring, heartbeats, periodics
from agent.db import api as db_api
from agent.db import heartbeats as db_heartbeats
from agent.db import history as db_history
from tests.unit.schema import migrated_db

CONF = cfg.CONF
ME = "cond-me"
OTHER = "cond-other"


@pytest.fixture
def db(tmp_path):
    """A migrated SQLite database with this conductor registered."""
    config.register_opts(CONF)
    CONF([], project="kiln")
    CONF.set_override("heartbeat_timeout", 30, group="conductor")
    migrated_db(tmp_path)
    db_api.register_conductor(ME, ["fake-hardware"])
    yield
    db_api.dispose()
    CONF.clear_override("heartbeat_timeout", group="conductor")


def _ago(seconds: int) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)


def _node(name: str, state: str, beat_ago: int | None, **values) -> str:
    node = db_api.create_node(
        {
            "name": name,
            "driver": "fake-hardware",
            "provision_state": state,
            "provision_updated_at": _ago(1000),
            "last_heartbeat_at": None if beat_ago is None else _ago(beat_ago),
            **values,
        }
    )
    return node.uuid


def _ring(*hosts: str) -> hash_ring.HashRingManager:
    return hash_ring.HashRingManager(conductors=lambda: [{"hostname": h} for h in hosts], reset_interval=3600)


def test_silent_agents_are_flagged(db) -> None:
    silent = _node("silent", states.ENROLL, 500)
    waiting = _node("waiting", states.DEPLOYWAIT, None)
    never = _node("never", states.ENROLL, None)
    fresh = _node("fresh", states.ENROLL, 5)
    maint = _node("maint", states.ENROLL, 500, maintenance=True)
    idle = _node("idle", states.AVAILABLE, 500)
    flagged = periodics.flag_missing_heartbeats(ME, _ring(ME), timeout_s=300)
    assert sorted(flagged) == sorted([silent, waiting])
    node = db_api.get_node(silent)
    assert node.fault == heartbeats.HEARTBEAT_FAULT
    assert silent in node.last_error and "300 s" in node.last_error
    assert node.reservation is None
    for uuid in (never, fresh, maint, idle):
        assert db_api.get_node(uuid).fault is None
    assert periodics.flag_missing_heartbeats(ME, _ring(ME), timeout_s=300) == []  # flagged once
    events = db_history.list_events(node.id)  # one history event, the error shown in last_error
    assert [(e["severity"], e["event"]) for e in events] == [("ERROR", node.last_error)]
    assert db_history.list_events(db_api.get_node(waiting).id)[0]["event_type"] == "deploying"


def test_only_this_conductors_nodes_are_flagged(db) -> None:
    ring = _ring(ME, OTHER)
    uuids = [_node(f"n{i}", states.ENROLL, 500) for i in range(12)]
    mine = {u for u in uuids if ring.get_conductor_for({"uuid": u, "conductor_group": ""}) == ME}
    assert 0 < len(mine) < 12
    assert set(periodics.flag_missing_heartbeats(ME, ring, timeout_s=300)) == mine
    # The other conductor dies: the ring without it hands every node to this one.
    assert set(periodics.flag_missing_heartbeats(ME, _ring(ME), timeout_s=300)) == set(uuids) - mine


def test_dead_conductor_locks_are_released_and_its_work_failed(db) -> None:
    db_api.register_conductor("dead-1", ["fake-hardware"])
    db_api.unregister_conductor("dead-1")
    deploying = _node("deploying", states.DEPLOYING, None)
    available = _node("available", states.AVAILABLE, None)
    mine_locked = _node("mine", states.CLEANING, None)
    for uuid in (deploying, available):
        db_api.reserve_node("dead-1", uuid)
    db_api.reserve_node(ME, mine_locked)
    freed = periodics.release_dead_conductors(ME, _ring(ME))
    assert freed == {"dead-1": 2}
    node = db_api.get_node(deploying)
    assert node.reservation is None
    assert node.provision_state == states.DEPLOYFAIL
    assert "dead-1" in node.last_error and "deploying" in node.last_error
    assert db_api.get_node(available).provision_state == states.AVAILABLE
    assert db_api.get_node(available).reservation is None
    assert db_api.get_node(mine_locked).reservation == ME  # a live conductor's lock stays
    assert periodics.release_dead_conductors(ME, _ring(ME)) == {}


def test_refresh_ring_rebuilds_when_the_live_set_changes(db) -> None:
    reads = []

    def source():
        reads.append(1)
        return db_api.get_online_conductors(30)

    ring = hash_ring.HashRingManager(conductors=source, reset_interval=3600)
    live = periodics.refresh_ring(ring, None)
    assert live == {ME}
    ring.rings()
    assert periodics.refresh_ring(ring, live) == {ME}
    ring.rings()
    assert len(reads) == 1  # unchanged: the built ring is kept
    db_api.register_conductor(OTHER, ["fake-hardware"])
    live = periodics.refresh_ring(ring, live)
    assert live == {ME, OTHER}
    assert set(ring.get_ring("").hosts) == {ME, OTHER}
    assert len(reads) == 2


def test_own_locks_are_released_on_shutdown_and_their_work_failed(db) -> None:
    deploying = _node("deploying", states.DEPLOYING, None, reservation=ME)
    powering = _node("powering", states.AVAILABLE, None, reservation=ME, target_power_state="power on")
    other = _node("other", states.CLEANING, None, reservation=OTHER)
    free = _node("free", states.AVAILABLE, None)

    assert periodics.release_own_locks(ME) == 2
    node = db_api.get_node(deploying)
    assert (node.reservation, node.provision_state) == (None, states.DEPLOYFAIL)
    assert f"conductor {ME} stopped" in node.last_error and "deploying" in node.last_error
    node = db_api.get_node(powering)
    assert (node.reservation, node.provision_state, node.target_power_state) == (None, states.AVAILABLE, None)
    assert "power on may not have happened" in node.last_error
    assert db_api.get_node(other).reservation == OTHER  # another conductor's lock stays
    assert db_api.get_node(other).provision_state == states.CLEANING
    assert db_api.get_node(free).last_error is None
    assert periodics.release_own_locks(ME) == 0


def test_take_over_nodes_claims_the_rings_nodes_once(db) -> None:
    other_id = db_api.register_conductor(OTHER, ["fake-hardware"]).id
    mine = db_api.get_conductor(ME).id
    moved = _node("moved", states.ACTIVE, None, conductor_affinity=other_id)
    waiting = _node("waiting", states.DEPLOYWAIT, None)
    idle = _node("idle", states.AVAILABLE, None, conductor_affinity=other_id)
    locked = _node("locked", states.ACTIVE, None, conductor_affinity=other_id, reservation=OTHER)

    assert set(periodics.take_over_nodes(ME, _ring(ME))) == {moved, waiting}
    assert db_api.get_node(moved).conductor_affinity == mine
    assert db_api.get_node(waiting).conductor_affinity == mine
    assert db_api.get_node(idle).conductor_affinity == other_id
    assert db_api.get_node(locked).conductor_affinity == other_id
    assert periodics.take_over_nodes(ME, _ring(ME)) == []  # once per move


def test_take_over_nodes_leaves_the_other_conductors_nodes(db) -> None:
    db_api.register_conductor(OTHER, ["fake-hardware"])
    ring = _ring(ME, OTHER)
    nodes = [_node(f"n{i}", states.ACTIVE, None) for i in range(24)]  # both own some (but 2**-23)
    taken = set(periodics.take_over_nodes(ME, ring))
    assert taken == {u for u in nodes if ring.get_conductor_for(db_api.get_node(u)) == ME}
    assert 0 < len(taken) < len(nodes)


def test_release_moved_nodes_waits_for_the_new_owner(db, tmp_path) -> None:
    optsdir = tmp_path / "opts"
    optsdir.mkdir()
    CONF.set_override("optsdir", str(optsdir), group="dnsmasq")
    CONF.set_override("hostsdir", str(tmp_path / "hosts"), group="dnsmasq")
    try:
        other_id = db_api.register_conductor(OTHER, ["fake-hardware"]).id
        mine = db_api.get_conductor(ME).id
        node = _node("moving", states.ACTIVE, None, conductor_affinity=mine)
        (optsdir / node).write_text("tag:x,option:bootfile-name,x\n")
        (optsdir / "not-a-node").write_text("")
        assert periodics.release_moved_nodes(ME, _ring(OTHER)) is True  # not taken over yet
        assert (optsdir / node).exists()
        db_api.update_node(node, {"conductor_affinity": other_id})
        assert periodics.release_moved_nodes(ME, _ring(OTHER)) is False
        assert sorted(os.listdir(optsdir)) == ["not-a-node"]
    finally:
        CONF.clear_override("optsdir", group="dnsmasq")
        CONF.clear_override("hostsdir", group="dnsmasq")


def test_after_ring_change_asks_again_while_a_node_is_locked(db, tmp_path) -> None:
    CONF.set_override("optsdir", str(tmp_path / "no-opts"), group="dnsmasq")
    try:
        other_id = db_api.register_conductor(OTHER, ["fake-hardware"]).id
        locked = _node("locked", states.ACTIVE, None, conductor_affinity=other_id)
        db_api.reserve_node("someone", locked)
        assert periodics.after_ring_change(ME, _ring(ME)) is True
        db_api.release_node("someone", locked)
        assert periodics.after_ring_change(ME, _ring(ME)) is False
        assert db_api.get_node(locked).conductor_affinity == db_api.get_conductor(ME).id
    finally:
        CONF.clear_override("optsdir", group="dnsmasq")


def test_locked_nodes_and_nodes_that_beat_meanwhile_are_not_flagged(db) -> None:
    locked = _node("locked", states.ENROLL, 500, reservation="some-conductor")
    beat = _node("beat", states.ENROLL, 500)
    silent = _node("silent2", states.ENROLL, 500)
    nodes = {u: db_api.get_node(u) for u in (locked, beat, silent)}
    db_api.update_node(beat, {"last_heartbeat_at": _ago(1)})  # after the pass read its candidates
    messages = {n.id: f"silent {n.uuid}" for n in nodes.values()}
    flagged = db_heartbeats.flag_silent_nodes(messages, heartbeats.HEARTBEAT_FAULT, 300)
    assert flagged == [nodes[silent].id]
    assert db_api.get_node(silent).last_error == f"silent {silent}"
    assert db_api.get_node(locked).fault is None and db_api.get_node(beat).fault is None
    assert db_heartbeats.flag_silent_nodes(messages, heartbeats.HEARTBEAT_FAULT, 300) == []  # once
