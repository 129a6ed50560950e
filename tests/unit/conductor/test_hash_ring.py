"""The hash ring: stable mapping, few moves when a conductor dies, groups, and live conductors from the DB."""

from __future__ import annotations

import collections
import datetime
import uuid

import pytest
from sqlalchemy import update

from agent.common import exception
from agent.conductor import hash_ring
from agent.db import api as db_api
from agent.db import engine as db_engine
from agent.db.models import Conductor, utcnow

NODES = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"kiln-node-{i}")) for i in range(3000)]


def _owners(ring: hash_ring.HashRing) -> dict[str, str]:
    return {node: ring.get_hosts(node)[0] for node in NODES}


def test_mapping_is_deterministic_and_independent_of_order() -> None:
    a = hash_ring.HashRing(["c1", "c2", "c3"])
    b = hash_ring.HashRing(["c3", "c1", "c2"])
    assert _owners(a) == _owners(b)


def test_nodes_spread_over_all_conductors() -> None:
    counts = collections.Counter(_owners(hash_ring.HashRing(["c1", "c2", "c3"])).values())
    assert set(counts) == {"c1", "c2", "c3"}
    # 128 points each: every conductor gets a fair share (a third is 1000)
    assert all(700 < n < 1300 for n in counts.values()), counts


def test_removing_a_conductor_moves_only_its_nodes() -> None:
    before = _owners(hash_ring.HashRing(["c1", "c2", "c3"]))
    after = _owners(hash_ring.HashRing(["c1", "c3"]))
    moved = [node for node in NODES if before[node] != after[node]]
    assert {before[node] for node in moved} == {"c2"}
    assert all(after[node] in ("c1", "c3") for node in moved)
    assert len(moved) == sum(1 for owner in before.values() if owner == "c2")
    assert 0.23 < len(moved) / len(NODES) < 0.43
    # the dead conductor's nodes are shared by both survivors
    assert collections.Counter(after[node] for node in moved).keys() == {"c1", "c3"}


def test_adding_a_conductor_takes_nodes_only_for_itself() -> None:
    before = _owners(hash_ring.HashRing(["c1", "c2", "c3"]))
    after = _owners(hash_ring.HashRing(["c1", "c2", "c3", "c4"]))
    moved = [node for node in NODES if before[node] != after[node]]
    assert {after[node] for node in moved} == {"c4"}


def test_replicas_are_distinct_and_primary_first() -> None:
    ring = hash_ring.HashRing(["c1", "c2", "c3"])
    for node in NODES[:200]:
        hosts = ring.get_hosts(node, replicas=2)
        assert len(hosts) == 2 and hosts[0] != hosts[1]
        assert hosts[0] == ring.get_hosts(node)[0]
        assert ring.get_hosts(node, replicas=5) == ring.get_hosts(node, replicas=3)
        assert ring.get_hosts(node, ignore_hosts=[hosts[0]])[0] == hosts[1]


def test_empty_ring_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one host"):
        hash_ring.HashRing([])


def _manager(conductors):
    return hash_ring.HashRingManager(lambda: conductors, reset_interval=3600)


def test_manager_groups_and_node_lists() -> None:
    conductors = [
        {"hostname": "c1", "conductor_group": ""},
        {"hostname": "c2", "conductor_group": ""},
        {"hostname": "rack9-a", "conductor_group": "Rack9"},
    ]
    manager = _manager(conductors)
    nodes = [{"uuid": u, "conductor_group": ""} for u in NODES[:300]]
    rack = [{"uuid": u, "conductor_group": "rack9"} for u in NODES[300:330]]
    assert {manager.get_conductor_for(n) for n in rack} == {"rack9-a"}
    c1 = manager.nodes_for_conductor("c1", nodes + rack)
    c2 = manager.nodes_for_conductor("c2", nodes + rack)
    assert len(c1) + len(c2) == 300 and c1 and c2
    assert manager.nodes_for_conductor("rack9-a", nodes + rack) == rack
    with pytest.raises(exception.ConductorNotFound, match='conductor group "east"'):
        manager.get_conductor_for({"uuid": NODES[0], "conductor_group": "east"})


def test_manager_rebuilds_after_interval() -> None:
    now = [0.0]
    live = [{"hostname": "c1"}, {"hostname": "c2"}]
    manager = hash_ring.HashRingManager(lambda: list(live), reset_interval=10, clock=lambda: now[0])
    node = {"uuid": NODES[0]}
    first = manager.get_conductor_for(node)
    live[:] = [c for c in live if c["hostname"] != first]
    assert manager.get_conductor_for(node) == first  # cached ring
    now[0] = 10.0
    assert manager.get_conductor_for(node) != first


def test_manager_reads_online_conductors_and_a_dead_one_hands_over(db) -> None:
    for host in ("cond-a", "cond-b", "cond-c"):
        db_api.register_conductor(host, ["fake-hardware"])
    manager = hash_ring.HashRingManager(reset_interval=3600)
    nodes = [{"uuid": u, "conductor_group": ""} for u in NODES[:600]]
    owners = {n["uuid"]: manager.get_conductor_for(n) for n in nodes}
    assert set(owners.values()) == {"cond-a", "cond-b", "cond-c"}

    # cond-b stops heartbeating: its last update is older than the timeout
    stale = utcnow() - datetime.timedelta(hours=1)
    with db_engine.session(write=True) as sess:
        sess.execute(update(Conductor).where(Conductor.hostname == "cond-b").values(updated_at=stale))
    manager.reset()
    after = {n["uuid"]: manager.get_conductor_for(n) for n in nodes}
    assert set(after.values()) == {"cond-a", "cond-c"}
    for node, owner in owners.items():
        if owner != "cond-b":
            assert after[node] == owner


def test_replica_lists_cover_each_node_twice() -> None:
    conductors = [{"hostname": h} for h in ("c1", "c2", "c3")]
    manager = hash_ring.HashRingManager(lambda: conductors, reset_interval=3600, replicas=2)
    nodes = [{"uuid": u} for u in NODES[:300]]
    seen = collections.Counter()
    for host in ("c1", "c2", "c3"):
        for node in manager.nodes_for_conductor(host, nodes, include_replicas=True):
            seen[node["uuid"]] += 1
    assert set(seen.values()) == {2} and len(seen) == 300
    primaries = sum(len(manager.nodes_for_conductor(h, nodes)) for h in ("c1", "c2", "c3"))
    assert primaries == 300
