"""Hot-path queries (batched heartbeats, light token checks, one-transaction reports); SQLite WAL."""

from __future__ import annotations

import datetime
import os
import time

import pytest
import sqlalchemy

from agent.common import config, exception
from agent.db import api, engine, heartbeats, migration
from agent.db import inventory as db_inventory


def _at(seconds: int) -> datetime.datetime:
    return datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(seconds=seconds)


def test_sqlite_connections_use_wal_normal_sync_and_the_busy_timeout(db):
    with db.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        timeout_ms = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert timeout_ms == int(config.register_opts().database.sqlite_busy_timeout * 1000)


def test_in_memory_sqlite_keeps_its_memory_journal():
    mem = engine.create_engine("sqlite://")
    try:
        with mem.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "memory"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    finally:
        mem.dispose()


def test_current_engine_never_configures_one():
    api.dispose()
    assert engine.current_engine() is None


def test_record_agent_heartbeats_in_chunks_names_missing_nodes(db, monkeypatch):
    monkeypatch.setattr(heartbeats, "HEARTBEAT_CHUNK", 2)
    nodes = [api.create_node({"driver": "fake-hardware"}) for _ in range(5)]
    api.update_node(nodes[0].uuid, {"description": "touched"})
    updated = {n.uuid: api.get_node(n.uuid).updated_at for n in nodes}
    times = {n.id: _at(i) for i, n in enumerate(nodes)}
    times[9999] = _at(99)
    assert heartbeats.record_agent_heartbeats(times) == [9999]
    for i, node in enumerate(nodes):
        stored = api.get_node(node.uuid)
        assert stored.last_heartbeat_at == _at(i)
        assert stored.updated_at == updated[node.uuid]
    assert heartbeats.record_agent_heartbeats({}) == []


def test_record_agent_heartbeats_rejects_bad_items(db):
    node = api.create_node({"driver": "fake-hardware"})
    with pytest.raises(exception.InvalidParameterValue, match="'yesterday'"):
        heartbeats.record_agent_heartbeats({node.id: "yesterday"})
    with pytest.raises(exception.InvalidParameterValue, match="'abc'"):
        heartbeats.record_agent_heartbeats({"abc": _at(0)})
    assert api.get_node(node.uuid).last_heartbeat_at is None


def test_get_node_agent_auth(db):
    node = api.create_node(
        {"driver": "fake-hardware", "agent_token_hash": "ab" * 32, "fault": "power failure"}
    )
    auth = heartbeats.get_node_agent_auth(node.uuid.upper())
    assert auth == {
        "id": node.id,
        "uuid": node.uuid,
        "agent_token_hash": "ab" * 32,
        "provision_state": "enroll",
        "fault": "power failure",
        "updated_at": None,
    }
    assert heartbeats.get_node_agent_auth("5f0cdd6b-4a3c-4f4e-9a52-3b0f7f1c0d11") is None
    assert heartbeats.get_node_agent_auth("not-a-uuid") is None
    assert heartbeats.get_node_agent_auth(None) is None


def test_list_nodes_updated_since(db):
    a = api.create_node({"driver": "fake-hardware"})
    b = api.create_node({"driver": "fake-hardware"})
    api.update_node(b.uuid, {"description": "x"})
    changed = heartbeats.list_nodes_updated_since(_at(0) - datetime.timedelta(days=3650))
    assert list(changed) == [b.uuid]  # a was never updated (updated_at NULL)
    assert changed[b.uuid] == api.get_node(b.uuid).updated_at
    assert heartbeats.list_nodes_updated_since(_at(10**6)) == {}
    assert a.uuid not in changed


def test_store_inventory_in_one_transaction(db):
    node = api.create_node({"driver": "fake-hardware", "properties": {"cpus": 1}})
    other = api.create_node({"driver": "fake-hardware"})
    api.create_port({"address": "52:54:00:00:00:01", "node_id": node.id, "local_link_connection": {"x": 1}})
    api.create_port({"address": "52:54:00:00:00:09", "node_id": other.id})
    inventory = {"cpu": {"count": 8}}
    result = db_inventory.store_inventory(
        node.id,
        inventory,
        changes={"added": {}},
        values={"properties": {"cpus": 8}},
        traits=["CUSTOM_A", "CUSTOM_B"],
        new_ports=[
            {"address": "52:54:00:00:00:02", "pxe_enabled": True},
            {"address": "52:54:00:00:00:09", "pxe_enabled": False},
        ],
        port_links={
            "52:54:00:00:00:01": {"port_id": "Ethernet1/1", "switch_id": "00:1c:73:00:00:01"},
            "52:54:00:00:00:02": {"port_id": "Ethernet1/2"},
        },
    )
    assert result["node"].properties == {"cpus": 8}
    assert result["node"].traits == ["CUSTOM_A", "CUSTOM_B"]
    assert result["skipped"] == [("52:54:00:00:00:09", other.id)]
    links = {p.address: (p.pxe_enabled, p.local_link_connection) for p in result["ports"]}
    assert links == {
        "52:54:00:00:00:01": (True, {"x": 1, "port_id": "Ethernet1/1", "switch_id": "00:1c:73:00:00:01"}),
        "52:54:00:00:00:02": (True, {"port_id": "Ethernet1/2"}),
    }
    assert db_inventory.get_node_inventory(node.id) == inventory
    assert [h["changes"] for h in db_inventory.list_inventory_history(node.id)] == [{"added": {}}]
    assert api.get_port_by_address("52:54:00:00:00:09").node_id == other.id


def test_store_inventory_stores_nothing_when_any_part_fails(db):
    api.create_node({"driver": "fake-hardware", "name": "taken"})
    node = api.create_node({"driver": "fake-hardware"})
    with pytest.raises(exception.DuplicateName):
        db_inventory.store_inventory(
            node.id,
            {"cpu": {}},
            values={"name": "taken", "properties": {"cpus": 2}},
            traits=["CUSTOM_X"],
            new_ports=[{"address": "52:54:00:00:00:05"}],
        )
    assert db_inventory.get_node_inventory(node.id) is None
    assert db_inventory.list_inventory_history(node.id) == []
    assert api.get_node(node.uuid).properties == {}
    assert api.get_node(node.uuid).traits == []
    assert api.list_ports(node_id=node.id) == []


def test_store_inventory_checks_its_input(db):
    node = api.create_node({"driver": "fake-hardware"})
    with pytest.raises(exception.InvalidParameterValue, match="must be a dict"):
        db_inventory.store_inventory(node.id, ["not", "a", "dict"])
    with pytest.raises(exception.InvalidParameterValue, match="uuid"):
        db_inventory.store_inventory(node.id, {}, values={"uuid": "x"})
    with pytest.raises(exception.NodeNotFound):
        db_inventory.store_inventory(424242, {})
    assert sqlalchemy.inspect(api.get_engine()).has_table("nodes")


def test_store_inventory_refuses_a_reserved_node_when_asked(db):
    node = api.create_node({"driver": "fake-hardware"})
    api.reserve_node("conductor-b", node.uuid)
    with pytest.raises(exception.NodeLocked) as err:
        db_inventory.store_inventory(
            node.id, {"cpu": {}}, values={"properties": {"cpus": 2}}, holding_lock=False
        )
    assert "conductor-b" in str(err.value)
    assert db_inventory.get_node_inventory(node.id) is None
    assert api.get_node(node.uuid).properties == {}
    result = db_inventory.store_inventory(node.id, {"cpu": {}}, values={"properties": {"cpus": 2}})
    assert result["node"].properties == {"cpus": 2}  # the lock holder itself stores without the check
    assert result["created"] == [] and result["skipped"] == []


def test_store_inventory_serializes_once_and_skips_ports_when_asked(db):
    node = api.create_node({"driver": "fake-hardware"})
    api.create_port({"address": "52:54:00:00:00:01", "node_id": node.id})
    api.create_port({"address": "52:54:00:00:00:03", "node_id": node.id})
    inventory = {"cpu": {"count": 8, "flags": ["a", "b"]}, "name": "é"}
    for changes in (None, {"changed": {"cpu": 1}}):  # the first report inserts, the second updates
        result = db_inventory.store_inventory(
            node.id,
            inventory,
            changes=changes,
            new_ports=[{"address": "52:54:00:00:00:02"}],
            port_links={"52:54:00:00:00:01": {"port_id": "Ethernet1/1"}},
            holding_lock=False,
        )
        assert result["ports"] is None
    assert db_inventory.get_node_inventory(node.id) == inventory
    history = db_inventory.list_inventory_history(node.id)
    assert [h["inventory"] for h in history] == [inventory, inventory]
    assert [h["changes"] for h in history] == [{"changed": {"cpu": 1}}, None]
    assert api.get_port_by_address("52:54:00:00:00:01").local_link_connection == {"port_id": "Ethernet1/1"}
    assert api.get_port_by_address("52:54:00:00:00:02").node_id == node.id
    assert api.get_port_by_address("52:54:00:00:00:03").local_link_connection == {}


def test_get_node_report_state(db):
    node = api.create_node(
        {"driver": "fake-hardware", "name": "n1", "properties": {"cpus": 2}, "driver_internal_info": {"a": 1}}
    )
    api.set_node_traits(node.uuid, ["CUSTOM_B", "CUSTOM_A"])
    assert db_inventory.get_node_report_state(node.uuid.upper()) == {
        "id": node.id,
        "uuid": node.uuid,
        "name": "n1",
        "agent_token_hash": None,
        "provision_state": node.provision_state,
        "properties": {"cpus": 2},
        "driver_internal_info": {"a": 1},
        "traits": ["CUSTOM_A", "CUSTOM_B"],
    }
    assert db_inventory.get_node_report_state("1be26c0b-03f2-4d2e-ae87-c02d7f33c123") is None
    assert db_inventory.get_node_report_state("n1") is None


def _wal_size(db_url: str) -> int:
    path = db_url.removeprefix("sqlite:///") + "-wal"
    return os.path.getsize(path) if os.path.exists(path) else 0


def _write_inventories(rounds: int, pause: float) -> int:
    """Store a 200 kB inventory ``rounds`` times; the largest WAL size seen between rounds."""
    node = api.create_node({"driver": "fake-hardware"})
    inventory = {"blob": "x" * 200_000}
    largest = 0
    for i in range(rounds):
        db_inventory.store_inventory(node.id, {**inventory, "round": i})
        largest = max(largest, _wal_size(str(api.get_engine().url)))
        time.sleep(pause)
    return largest


def test_sqlite_log_is_checkpointed_by_a_background_thread_not_on_commit(db_url):
    config.register_opts().set_override("sqlite_checkpoint_interval", 0.02, group="database")
    try:
        api.configure(db_url)
        migration.upgrade()
        with api.get_engine().connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        background = engine.checkpointer(api.get_engine())
        assert background is not None
        # 30 rounds of 400 kB (current + history row) = 12 MB: without checkpoints the log holds it all.
        largest = _write_inventories(30, 0.05)
        assert largest < 4_000_000, f"the WAL grew to {largest} bytes: nothing checkpointed it"
        assert background.thread is not None and background.thread.is_alive()
        busy, log, done = background.run_once()
        assert (busy, log) == (0, done)
    finally:
        api.dispose()
        config.register_opts().clear_override("sqlite_checkpoint_interval", group="database")
    assert background.thread is not None and not background.thread.is_alive()


def test_sqlite_checkpoints_on_commit_when_the_interval_is_zero(db_url):
    config.register_opts().set_override("sqlite_checkpoint_interval", 0, group="database")
    try:
        api.configure(db_url)
        migration.upgrade()
        with api.get_engine().connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        assert engine.checkpointer(api.get_engine()) is None
    finally:
        api.dispose()
        config.register_opts().clear_override("sqlite_checkpoint_interval", group="database")


def test_an_engine_without_a_checkpointer_keeps_sqlites_own_checkpoints(db_url):
    """Only the process's engine (configure) hands checkpoints to a thread; any other one keeps them."""
    other = engine.create_engine(db_url)
    try:
        with other.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        assert engine.checkpointer(other) is None
    finally:
        other.dispose()
