"""The agents' RPC methods on a real SQLite database, called over oslo.messaging's in-memory bus."""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import logging
import os
import threading
import time

import oslo_messaging as messaging
import pytest
import sqlalchemy
from oslo_config import cfg

from agent.common import config, exception, rpc, states, tokens
from agent.common.tokens import hash_token
from agent.conductor import agent_endpoints, heartbeats, inventory_report, task_manager, workers
from agent.conductor.drivers import fake
from agent.conductor.manager import ConductorManager
from agent.db import api as db_api
from agent.db.models import Node, NodeTrait
from agent.inventory import lldp
from agent.inventory.collect import collect
from agent.node.conductor_client import ConductorClient
from tests.unit.schema import migrated_db

CONF = cfg.CONF
HOST = "unit-conductor"
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")
HGX_UUID = "9a5b2c00-1d2e-11ee-8000-3cecef123456"
HGX_BOOTIF = "a0:88:c2:4e:3f:10"


@pytest.fixture(scope="module")
def hgx_inventory() -> dict:
    """The hgx-h100 fixture's inventory, as kiln-agent sends it."""
    return json.loads(json.dumps(collect(os.path.join(FIXTURES, "hgx-h100"), use_nvml=False)))


@pytest.fixture
def conductor(tmp_path):
    """A ConductorManager served on kombu+memory over a fresh SQLite database; yields the agents' client."""
    config.register_opts(CONF)
    CONF([], project="kiln")
    overrides = {
        "host": HOST,
        "node_locked_retry_attempts": 1,
        "node_locked_retry_interval": 0.0,
        "agent_heartbeat_interval": 7,
        "agent_heartbeat_timeout": 40,
    }
    for name, value in overrides.items():
        CONF.set_override(name, value, group="conductor")
    migrated_db(tmp_path)
    db_api.register_conductor(HOST, ["fake-hardware"])
    transport = rpc.get_transport(CONF, url="kombu+memory:////")
    server = rpc.get_server(transport, rpc.CONDUCTOR_TOPIC, HOST, [ConductorManager(HOST)])
    server.start()
    yield ConductorClient(transport, timeout=10)
    rpc.stop_server(server, 10)
    transport.cleanup()
    db_api.dispose()
    for name in overrides:
        CONF.clear_override(name, group="conductor")
    CONF.clear_override("enable_discovery", group="conductor")


def _lookup(api: ConductorClient, inv: dict) -> dict:
    macs = [n["mac_address"] for n in inv["nics"] if n.get("pci_address")]
    return api.lookup({}, macs, inv["system"]["uuid"], inv["system"]["pxe_interface"])


def _wait(predicate, timeout: float = 10.0) -> bool:
    """Wait for a cast to be handled (casts return before the server runs them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# --- lookup ----------------------------------------------------------------------------------------


def test_lookup_discovers_an_unknown_node_with_its_ports(conductor, hgx_inventory) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid = answer["node"]["uuid"]
    node = db_api.get_node(uuid)
    assert node.provision_state == "enroll"
    assert node.driver == "fake-hardware"
    assert node.power_interface == "fake"
    assert node.system_uuid == HGX_UUID
    ports = {p.address: p.pxe_enabled for p in db_api.list_ports(node_id=node.id)}
    assert len(ports) == 7  # the 7 Ethernet NICs; the two 20-byte IB addresses are no MACs
    assert ports[HGX_BOOTIF] is True
    assert ports["3c:ec:ef:12:34:56"] is False
    assert answer["node"]["provision_state"] == "enroll"
    assert answer["config"] == {
        "heartbeat_interval": 7,
        "heartbeat_timeout": 40,
        "agent_topic": "kiln.agent",
        "heartbeat_topic": "kiln.conductor.heartbeat",
    }
    token = answer["agent_token"]
    assert isinstance(token, str) and len(token) >= 40
    assert node.agent_token_hash == hash_token(token)
    assert token not in json.dumps(
        {k: str(v) for k, v in vars(node).items() if not k.startswith("_")}
    )  # only its hash is stored


def test_token_is_issued_once(conductor, hgx_inventory) -> None:
    first = _lookup(conductor, hgx_inventory)
    second = _lookup(conductor, hgx_inventory)
    assert first["agent_token"]
    assert second["agent_token"] is None
    assert second["node"]["uuid"] == first["node"]["uuid"]
    assert len(db_api.list_nodes()) == 1


def test_lookup_on_a_held_node_issues_no_token_until_the_task_ends(conductor, hgx_inventory) -> None:
    """A task may be rebooting the node: the token waits for its end, and the agent asks again."""
    uuid = _lookup(conductor, hgx_inventory)["node"]["uuid"]
    db_api.update_node(uuid, {"agent_token_hash": None})  # what a reboot does before power-cycling
    CONF.set_override("node_locked_retry_attempts", 5, group="conductor")
    CONF.set_override("node_locked_retry_interval", 1.0, group="conductor")
    with task_manager.acquire({}, uuid, host=HOST, retry_attempts=1, load_driver=False):
        began = time.monotonic()
        with pytest.raises(exception.NodeLocked) as refused:
            _lookup(conductor, hgx_inventory)
        assert time.monotonic() - began < 1.0  # answered at once, not after the retries
        assert HOST in str(refused.value)
        assert db_api.get_node(uuid).agent_token_hash is None
    token = _lookup(conductor, hgx_inventory)["agent_token"]
    assert token and db_api.get_node(uuid).agent_token_hash == hash_token(token)


def test_lookup_matches_an_enrolled_node_by_mac(conductor) -> None:
    node = db_api.create_node({"name": "rack1-n1", "driver": "fake-hardware"})
    db_api.create_port({"address": "52:54:00:12:34:56", "node_id": node.id})
    answer = conductor.lookup({}, ["52:54:00:99:99:99", "52:54:00:12:34:56"], None, None)
    assert answer["node"]["uuid"] == node.uuid
    assert answer["node"]["name"] == "rack1-n1"
    assert len(db_api.list_nodes()) == 1


def test_lookup_falls_back_to_the_system_uuid(conductor) -> None:
    node = db_api.create_node({"driver": "fake-hardware", "system_uuid": HGX_UUID})
    answer = conductor.lookup({}, ["52:54:00:99:99:99"], HGX_UUID.upper(), None)
    assert answer["node"]["uuid"] == node.uuid


def test_lookup_with_bootif_in_pxe_form(conductor) -> None:
    answer = conductor.lookup({}, ["52:54:00:00:00:01"], None, "01-52-54-00-00-00-02")
    ports = {
        p.address: p.pxe_enabled
        for p in db_api.list_ports(node_id=db_api.get_node(answer["node"]["uuid"]).id)
    }
    assert ports == {"52:54:00:00:00:01": False, "52:54:00:00:00:02": True}


def test_lookup_refused_when_discovery_is_off(conductor) -> None:
    CONF.set_override("enable_discovery", False, group="conductor")
    with pytest.raises(exception.DiscoveryDisabled) as err:
        conductor.lookup({}, ["52:54:00:aa:bb:cc"], HGX_UUID, None)
    assert "52:54:00:aa:bb:cc" in str(err.value)
    assert "enable_discovery" in str(err.value)
    assert db_api.list_nodes() == []


def test_lookup_without_any_identity_is_invalid(conductor) -> None:
    with pytest.raises(exception.InvalidParameterValue) as err:
        conductor.lookup({}, ["not-a-mac"], "nope", None)
    assert "not-a-mac" in str(err.value)


def test_lookup_matching_two_nodes_is_a_conflict(conductor) -> None:
    a = db_api.create_node({"driver": "fake-hardware"})
    b = db_api.create_node({"driver": "fake-hardware"})
    db_api.create_port({"address": "52:54:00:00:00:0a", "node_id": a.id})
    db_api.create_port({"address": "52:54:00:00:00:0b", "node_id": b.id})
    with pytest.raises(exception.NodeLookupConflict) as err:
        conductor.lookup({}, ["52:54:00:00:00:0a", "52:54:00:00:00:0b"], None, None)
    assert a.uuid in str(err.value) and b.uuid in str(err.value)


# --- report_inventory ------------------------------------------------------------------------------


def test_report_stores_inventory_properties_traits_and_name(conductor, hgx_inventory) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid, token = answer["node"]["uuid"], answer["agent_token"]
    result = conductor.report_inventory({}, uuid, token, hgx_inventory, None)
    assert result["stored"] is True
    assert "CUSTOM_GPU_H100_SXM5_80GB" in result["traits"]
    assert "CUSTOM_GPU_COUNT_8" in result["traits"]
    node = db_api.get_node(uuid)
    assert node.name == "gpu-node-01"
    assert node.properties == {
        "cpus": 224,
        "cpu_arch": "x86_64",
        "memory_mb": 2097152,
        "local_gb": 893,  # 960197124096 B // GiB - 1
        "capabilities": "boot_mode:uefi",
    }
    assert sorted(node.traits) == [
        "CUSTOM_BOOT_UEFI",
        "CUSTOM_GPU_COUNT_8",
        "CUSTOM_GPU_H100_SXM5_80GB",
        "CUSTOM_GPU_LINK_DEGRADED",
        "CUSTOM_GPU_NVIDIA",
        "CUSTOM_NIC_400G",
        "CUSTOM_NIC_SRIOV",
        "CUSTOM_NVSWITCH",
    ]
    assert db_api.get_node_inventory(node.id) == hgx_inventory
    (entry,) = db_api.list_inventory_history(node.id)
    assert entry["changes"] is None
    assert node.reservation is None


def test_report_on_a_locked_node_is_stored_when_the_lock_is_let_go(conductor, hgx_inventory) -> None:
    # With a 10 s retry interval, only the wake-up at the lock's release stores it within seconds.
    answer = _lookup(conductor, hgx_inventory)
    uuid, token = answer["node"]["uuid"], answer["agent_token"]
    CONF.set_override("node_locked_retry_attempts", 3, group="conductor")
    CONF.set_override("node_locked_retry_interval", 10.0, group="conductor")
    held, let_go = threading.Event(), threading.Event()

    def hold() -> None:
        with task_manager.acquire({}, uuid, host=HOST, retry_attempts=1, load_driver=False):
            held.set()
            let_go.wait(30)
            time.sleep(0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(30)
    let_go.set()
    began = time.monotonic()
    try:
        assert conductor.report_inventory({}, uuid, token, hgx_inventory, None)["stored"] is True
    finally:
        holder.join()
    took = time.monotonic() - began
    assert 0.3 < took < 5.0, f"stored after {took:.2f} s; the lock was let go after 0.5 s"
    assert db_api.get_node_inventory(db_api.get_node(uuid).id) == hgx_inventory


def test_report_keeps_operator_traits_and_replaces_kiln_ones(conductor, hgx_inventory) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid, token = answer["node"]["uuid"], answer["agent_token"]
    conductor.report_inventory({}, uuid, token, hgx_inventory)
    db_api.add_node_trait(uuid, "CUSTOM_RACK_A12")
    changed = copy.deepcopy(hgx_inventory)
    changed["gpus"] = changed["gpus"][:4]
    for gpu in changed["gpus"]:
        gpu["pcie"]["degraded"] = False
    changes = {"removed": {"gpus": ["0000:ba:00.0"]}}
    result = conductor.report_inventory({}, uuid, token, changed, changes)
    assert "CUSTOM_GPU_COUNT_4" in result["traits"]
    assert "CUSTOM_GPU_COUNT_8" not in result["traits"]
    assert "CUSTOM_GPU_LINK_DEGRADED" not in result["traits"]
    assert "CUSTOM_RACK_A12" in result["traits"]
    history = db_api.list_inventory_history(uuid)
    assert [h["changes"] for h in history] == [changes, None]
    assert len(db_api.get_node_inventory(uuid)["gpus"]) == 4


def test_report_enrolls_ports_of_new_nics(conductor, hgx_inventory) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid, token = answer["node"]["uuid"], answer["agent_token"]
    grown = copy.deepcopy(hgx_inventory)
    nic = dict(grown["nics"][0], name="enp200s0", mac_address="b8:3f:d2:00:00:01", pci_address="0000:c8:00.0")
    grown["nics"].append(nic)
    conductor.report_inventory({}, uuid, token, grown)
    port = db_api.get_port_by_address("b8:3f:d2:00:00:01")
    assert port.node_id == db_api.get_node(uuid).id
    assert port.pxe_enabled is False


def test_invalid_inventory_is_refused_naming_the_paths(conductor, hgx_inventory) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid, token = answer["node"]["uuid"], answer["agent_token"]
    bad = copy.deepcopy(hgx_inventory)
    bad["cpu"]["count"] = "many"
    bad["gpus"][2]["pci_address"] = 7
    with pytest.raises(exception.InventoryInvalid) as err:
        conductor.report_inventory({}, uuid, token, bad)
    assert "$.cpu.count" in str(err.value)
    assert "$.gpus[2].pci_address" in str(err.value)
    assert uuid in str(err.value)
    assert db_api.get_node_inventory(uuid) is None
    assert db_api.get_node(uuid).properties == {}


@pytest.mark.parametrize("token", ["forged-token", "", None])
def test_wrong_token_is_rejected_logged_and_nothing_stored(conductor, hgx_inventory, caplog, token) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid = answer["node"]["uuid"]
    caplog.set_level(logging.WARNING, logger="agent.conductor.agent_endpoints")
    with pytest.raises(exception.InvalidAgentToken) as err:
        conductor.report_inventory({}, uuid, token, hgx_inventory)
    assert uuid in str(err.value)
    assert any(uuid in r.getMessage() and "report_inventory" in r.getMessage() for r in caplog.records)
    assert db_api.get_node_inventory(uuid) is None
    assert db_api.list_inventory_history(uuid) == []
    assert db_api.get_node(uuid).traits == []


def test_unknown_node_is_rejected_as_a_bad_token(conductor, hgx_inventory) -> None:
    with pytest.raises(exception.InvalidAgentToken):
        conductor.report_inventory({}, "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "x", hgx_inventory)


def test_report_on_a_locked_node_says_who_holds_it(conductor, hgx_inventory) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid = answer["node"]["uuid"]
    db_api.reserve_node("other-conductor", uuid)
    with pytest.raises(exception.NodeLocked) as err:
        conductor.report_inventory({}, uuid, answer["agent_token"], hgx_inventory)
    assert "other-conductor" in str(err.value)
    assert db_api.get_node_inventory(uuid) is None


# --- heartbeat and step_result ----------------------------------------------------------------------


def test_heartbeat_is_recorded(conductor, hgx_inventory) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid = answer["node"]["uuid"]
    assert db_api.get_node(uuid).last_heartbeat_at is None
    conductor.heartbeat({}, uuid, answer["agent_token"], {"uptime_s": 3.0})
    assert _wait(lambda: db_api.get_node(uuid).last_heartbeat_at is not None)


def test_heartbeat_with_wrong_token_records_nothing(conductor, hgx_inventory) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid = answer["node"]["uuid"]
    conductor.heartbeat({}, uuid, "forged", {})
    conductor.heartbeat({}, uuid, answer["agent_token"], {})  # casts are handled in order
    assert _wait(lambda: db_api.get_node(uuid).last_heartbeat_at is not None)
    node = db_api.get_node(uuid)
    db_api.update_node(uuid, {"last_heartbeat_at": None})
    conductor.heartbeat({}, uuid, "forged", {})
    conductor.step_result({}, uuid, "forged", "erase_devices", {"status": "succeeded"})
    assert not _wait(lambda: db_api.get_node(uuid).last_heartbeat_at is not None, 1.0)
    assert node.reservation is None


def test_heartbeat_clears_the_heartbeat_fault(conductor, hgx_inventory) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid = answer["node"]["uuid"]
    message = heartbeats.heartbeat_error(uuid, 40, None)
    db_api.update_node(uuid, {"fault": heartbeats.HEARTBEAT_FAULT, "last_error": message})
    conductor.heartbeat({}, uuid, answer["agent_token"], {})
    assert _wait(lambda: db_api.get_node(uuid).fault is None)
    assert _wait(lambda: db_api.get_node(uuid).reservation is None)
    assert db_api.get_node(uuid).last_error is None


class _Recorder:
    """Counts the hook calls of a fake deploy/inspect interface (real objects, patched onto the class)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []


@pytest.fixture
def hooks(monkeypatch):
    """Record the deploy and inspect hooks the endpoints call on the fake interfaces."""
    rec = _Recorder()
    monkeypatch.setattr(
        fake.FakeDeploy,
        "heartbeat",
        lambda self, task, status: rec.calls.append(("heartbeat", task.node.uuid, task.locked, status)),
        raising=False,
    )
    monkeypatch.setattr(
        fake.FakeDeploy,
        "step_result",
        lambda self, task, step, result: rec.calls.append(("step_result", task.node.uuid, step, result)),
        raising=False,
    )
    monkeypatch.setattr(
        fake.FakeInspect,
        "inventory_received",
        lambda self, task, inv: rec.calls.append(("inventory_received", task.node.uuid, len(inv["gpus"]))),
        raising=False,
    )
    return rec


def test_heartbeat_in_wait_call_back_calls_the_deploy_hook_under_lock(
    conductor, hgx_inventory, hooks
) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid = answer["node"]["uuid"]
    conductor.heartbeat({}, uuid, answer["agent_token"], {"n": 1})  # enroll: no hook
    assert _wait(lambda: db_api.get_node(uuid).last_heartbeat_at is not None)
    db_api.update_node(uuid, {"provision_state": states.DEPLOYWAIT})
    conductor.heartbeat({}, uuid, answer["agent_token"], {"n": 2})
    assert _wait(lambda: hooks.calls)
    assert hooks.calls == [("heartbeat", uuid, True, {"n": 2})]


def test_step_result_reaches_the_deploy_hook(conductor, hgx_inventory, hooks) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid = answer["node"]["uuid"]
    result = {"command_id": "c1", "status": "succeeded", "result": {"bytes": 4096}, "error": None}
    conductor.step_result({}, uuid, answer["agent_token"], "write_image", result)
    assert _wait(lambda: hooks.calls)
    assert hooks.calls == [("step_result", uuid, "write_image", result)]
    assert _wait(lambda: db_api.get_node(uuid).reservation is None)


def test_inventory_in_inspect_wait_reaches_the_inspect_hook(conductor, hgx_inventory, hooks) -> None:
    answer = _lookup(conductor, hgx_inventory)
    uuid = answer["node"]["uuid"]
    conductor.report_inventory({}, uuid, answer["agent_token"], hgx_inventory)
    assert hooks.calls == []
    db_api.update_node(uuid, {"provision_state": states.INSPECTWAIT})
    conductor.report_inventory({}, uuid, answer["agent_token"], hgx_inventory)
    assert hooks.calls == [("inventory_received", uuid, 8)]


# --- the heartbeat cache and batched writer ---------------------------------------------------------


@pytest.fixture
def manager(tmp_path):
    """A ConductorManager called directly (no RPC) over a fresh SQLite database; stopped afterwards."""
    config.register_opts(CONF)
    CONF([], project="kiln")
    CONF.set_override("host", HOST, group="conductor")
    CONF.set_override("node_locked_retry_attempts", 1, group="conductor")
    migrated_db(tmp_path)
    db_api.register_conductor(HOST, ["fake-hardware"])
    mgr = ConductorManager(HOST)
    yield mgr
    mgr.stop_heartbeats()
    db_api.dispose()
    for name in ("host", "node_locked_retry_attempts"):
        CONF.clear_override(name, group="conductor")


def _direct_lookup(mgr: ConductorManager, inv: dict) -> tuple[str, str]:
    macs = [n["mac_address"] for n in inv["nics"] if n.get("pci_address")]
    answer = mgr.lookup({}, macs, inv["system"]["uuid"], inv["system"]["pxe_interface"])
    return answer["node"]["uuid"], answer["agent_token"]


def _rejected(call) -> type:
    """The Kiln error ``call`` raised (expected_exceptions wraps it for the RPC server)."""
    with pytest.raises(messaging.ExpectedException) as err:
        call()
    return err.value.exc_info[0]


class _Commits:
    """Counts the write transactions committed on the engine while it is active (a context manager)."""

    def __init__(self) -> None:
        self.writes = 0

    def _on_commit(self, conn) -> None:
        if conn.get_execution_options().get("kiln_sqlite_immediate"):
            self.writes += 1

    def __enter__(self) -> _Commits:
        sqlalchemy.event.listen(db_api.get_engine(), "commit", self._on_commit)
        return self

    def __exit__(self, *exc) -> None:
        sqlalchemy.event.remove(db_api.get_engine(), "commit", self._on_commit)


def test_heartbeats_wait_in_memory_and_are_written_in_one_transaction(manager) -> None:
    agent_endpoints.set_heartbeat_recorder(
        manager, heartbeats.HeartbeatRecorder(interval=3600)
    )  # no thread pass
    nodes = [db_api.create_node({"driver": "fake-hardware"}) for _ in range(5)]
    for i, node in enumerate(nodes):
        db_api.update_node(node.uuid, {"agent_token_hash": hash_token(f"token-{i}")})
    before = {n.uuid: db_api.get_node(n.uuid).updated_at for n in nodes}
    with _Commits() as commits:
        for i, node in enumerate(nodes):
            manager.heartbeat({}, node.uuid, f"token-{i}", {})
    assert commits.writes == 0
    pending = manager.heartbeats.pending()
    assert sorted(pending) == sorted(n.id for n in nodes)
    assert all(db_api.get_node(n.uuid).last_heartbeat_at is None for n in nodes)
    with _Commits() as commits:
        assert manager.flush_heartbeats() == 5
    assert commits.writes == 1
    for node in nodes:
        stored = db_api.get_node(node.uuid)
        assert stored.last_heartbeat_at == pending[node.id]
        assert stored.updated_at == before[node.uuid]  # a heartbeat is no change of the node
    assert manager.heartbeats.pending() == {}
    with _Commits() as commits:
        assert manager.flush_heartbeats() == 0
    assert commits.writes == 0


def test_a_cached_node_is_read_again_when_its_token_changes(manager) -> None:
    node = db_api.create_node({"driver": "fake-hardware", "agent_token_hash": hash_token("old")})
    manager.heartbeat({}, node.uuid, "old", {})  # now cached
    db_api.update_node(node.uuid, {"agent_token_hash": hash_token("new")})
    assert _rejected(lambda: manager.heartbeat({}, node.uuid, "old", {})) is exception.InvalidAgentToken
    manager.heartbeat({}, node.uuid, "new", {})
    assert node.id in manager.heartbeats.pending()


def test_a_wrong_token_is_rejected_logged_and_nothing_recorded(manager, caplog) -> None:
    node = db_api.create_node({"driver": "fake-hardware", "agent_token_hash": hash_token("good")})
    manager.heartbeat({}, node.uuid, "good", {})
    manager.flush_heartbeats()
    db_api.update_node(node.uuid, {"last_heartbeat_at": None})
    caplog.set_level(logging.WARNING, logger="agent.conductor.heartbeats")
    for token in ("forged", "", None):
        assert (
            _rejected(lambda t=token: manager.heartbeat({}, node.uuid, t, {})) is exception.InvalidAgentToken
        )
    assert manager.heartbeats.pending() == {}
    manager.flush_heartbeats()
    assert db_api.get_node(node.uuid).last_heartbeat_at is None
    messages = [r.getMessage() for r in caplog.records]
    assert f"Rejected heartbeat from node {node.uuid}: wrong agent token" in messages
    assert f"Rejected heartbeat from node {node.uuid}: the agent sent no token" in messages


def test_a_deleted_node_is_not_served_from_the_cache(manager) -> None:
    node = db_api.create_node({"driver": "fake-hardware", "agent_token_hash": hash_token("t")})
    manager.heartbeat({}, node.uuid, "t", {})
    manager.flush_heartbeats()
    db_api.destroy_node(node.uuid)
    assert _rejected(lambda: manager.heartbeat({}, node.uuid, "t", {})) is exception.InvalidAgentToken
    assert manager.heartbeats.pending() == {}


def test_a_node_deleted_before_the_write_is_dropped_from_the_cache(manager) -> None:
    node = db_api.create_node({"driver": "fake-hardware", "agent_token_hash": hash_token("t")})
    manager.heartbeat({}, node.uuid, "t", {})
    # Another process deletes it (no session of this one sees the row go).
    with db_api.get_engine().begin() as conn:
        conn.execute(sqlalchemy.delete(Node).where(Node.id == node.id))
    assert manager.flush_heartbeats() == 0
    assert _rejected(lambda: manager.heartbeat({}, node.uuid, "t", {})) is exception.InvalidAgentToken


def test_a_change_by_another_process_reaches_the_cache_at_the_next_pass(manager, hooks) -> None:
    node = db_api.create_node({"driver": "fake-hardware", "agent_token_hash": hash_token("t")})
    manager.heartbeat({}, node.uuid, "t", {"n": 1})  # enroll: cached, no hook
    with db_api.get_engine().begin() as conn:  # as another conductor would (no session hook here)
        conn.execute(
            sqlalchemy.update(Node)
            .where(Node.id == node.id)
            .values(provision_state=states.DEPLOYWAIT, updated_at=datetime.datetime.now(datetime.UTC))
        )
    manager.flush_heartbeats()  # writes and drops entries whose updated_at moved
    manager.heartbeat({}, node.uuid, "t", {"n": 2})
    assert workers.get_pool().wait_idle(10)  # the hook runs on a conductor worker
    assert hooks.calls == [("heartbeat", node.uuid, True, {"n": 2})]


def test_only_hook_states_and_the_fault_take_the_node_lock(manager, hooks) -> None:
    node = db_api.create_node({"driver": "fake-hardware", "agent_token_hash": hash_token("t")})
    db_api.reserve_node("someone-else", node.uuid)
    manager.heartbeat({}, node.uuid, "t", {})  # enroll: recorded although the node is locked
    assert node.id in manager.heartbeats.pending()
    assert hooks.calls == []
    db_api.release_node("someone-else", node.uuid)
    db_api.update_node(node.uuid, {"provision_state": states.CLEANWAIT})
    manager.heartbeat({}, node.uuid, "t", {"n": 3})
    assert workers.get_pool().wait_idle(10)
    assert hooks.calls == [("heartbeat", node.uuid, True, {"n": 3})]
    assert db_api.get_node(node.uuid).reservation is None


def test_stop_writes_the_pending_heartbeats(manager) -> None:
    node = db_api.create_node({"driver": "fake-hardware", "agent_token_hash": hash_token("t")})
    manager.heartbeat({}, node.uuid, "t", {})
    manager.stop_heartbeats()
    assert manager.heartbeats.pending() == {}
    assert db_api.get_node(node.uuid).last_heartbeat_at is not None


def test_silent_node_check_sees_flushed_heartbeats(manager) -> None:
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=600)
    node = db_api.create_node(
        {
            "driver": "fake-hardware",
            "provision_state": states.DEPLOYWAIT,
            "provision_updated_at": old,
            "last_heartbeat_at": old,
            "agent_token_hash": hash_token("t"),
        }
    )
    assert [n.uuid for n in db_api.get_nodes_missing_heartbeat(60)] == [node.uuid]
    db_api.reserve_node("someone-else", node.uuid)  # keep the deploy hook out of this test
    manager.heartbeat({}, node.uuid, "t", {})
    manager.flush_heartbeats()
    assert db_api.get_nodes_missing_heartbeat(60) == []


# --- report_inventory: identical reports, one transaction, LLDP links --------------------------------


def test_an_identical_report_is_acknowledged_and_not_stored_again(manager, hgx_inventory) -> None:
    uuid, token = _direct_lookup(manager, hgx_inventory)
    first = manager.report_inventory({}, uuid, token, hgx_inventory)
    again = manager.report_inventory({}, uuid, token, copy.deepcopy(hgx_inventory))
    assert again == first == {"stored": True, "traits": first["traits"]}
    assert len(db_api.list_inventory_history(uuid)) == 1
    digest = db_api.get_node(uuid).driver_internal_info[inventory_report.INFO_INVENTORY_DIGEST]
    assert digest == inventory_report.inventory_digest(hgx_inventory)
    changed = copy.deepcopy(hgx_inventory)
    changed["memory"]["total_bytes"] += 4096
    manager.report_inventory({}, uuid, token, changed)
    assert len(db_api.list_inventory_history(uuid)) == 2
    assert db_api.get_node_inventory(uuid)["memory"]["total_bytes"] == changed["memory"]["total_bytes"]


def test_an_identical_report_is_stored_after_another_process_changed_the_node(manager, hgx_inventory) -> None:
    uuid, token = _direct_lookup(manager, hgx_inventory)
    manager.report_inventory({}, uuid, token, hgx_inventory)
    manager.heartbeat({}, uuid, token, {})  # the heartbeat cache now holds the node
    node = db_api.get_node(uuid)
    internal = dict(node.driver_internal_info, **{inventory_report.INFO_INVENTORY_DIGEST: "0" * 64})
    with db_api.get_engine().begin() as conn:  # another conductor stored another inventory meanwhile
        conn.execute(sqlalchemy.update(Node).where(Node.id == node.id).values(driver_internal_info=internal))
        conn.execute(sqlalchemy.insert(NodeTrait).values(node_id=node.id, trait="CUSTOM_OPERATOR"))
    answer = manager.report_inventory({}, uuid, token, copy.deepcopy(hgx_inventory))
    assert len(db_api.list_inventory_history(uuid)) == 2
    assert "CUSTOM_OPERATOR" in answer["traits"]
    digest = db_api.get_node(uuid).driver_internal_info[inventory_report.INFO_INVENTORY_DIGEST]
    assert digest == inventory_report.inventory_digest(hgx_inventory)
    with db_api.get_engine().begin() as conn:  # an operator's trait: the acknowledgement names it
        conn.execute(sqlalchemy.insert(NodeTrait).values(node_id=node.id, trait="CUSTOM_LATER"))
    again = manager.report_inventory({}, uuid, token, hgx_inventory)
    assert "CUSTOM_LATER" in again["traits"]
    assert len(db_api.list_inventory_history(uuid)) == 2


def test_an_identical_report_with_a_token_changed_elsewhere_is_rejected(
    manager, hgx_inventory, caplog
) -> None:
    uuid, token = _direct_lookup(manager, hgx_inventory)
    manager.report_inventory({}, uuid, token, hgx_inventory)
    manager.heartbeat({}, uuid, token, {})  # cached with the old token
    with db_api.get_engine().begin() as conn:  # another conductor issued a new token
        conn.execute(
            sqlalchemy.update(Node).where(Node.uuid == uuid).values(agent_token_hash=hash_token("new"))
        )
    caplog.set_level(logging.WARNING, logger="agent.conductor.agent_endpoints")
    rejected = _rejected(lambda: manager.report_inventory({}, uuid, token, hgx_inventory))
    assert rejected is exception.InvalidAgentToken
    assert f"Rejected report_inventory from node {uuid}: {tokens.STALE}" in [
        r.getMessage() for r in caplog.records
    ]
    assert token not in caplog.text
    assert manager.report_inventory({}, uuid, "new", hgx_inventory)["stored"] is True
    assert len(db_api.list_inventory_history(uuid)) == 1


def test_the_report_is_one_write_transaction(manager, hgx_inventory) -> None:
    uuid, token = _direct_lookup(manager, hgx_inventory)
    grown = copy.deepcopy(hgx_inventory)
    grown["nics"].append(
        dict(grown["nics"][0], name="enp200s0", mac_address="b8:3f:d2:00:00:01", pci_address="0000:c8:00.0")
    )
    with _Commits() as commits:
        manager.report_inventory({}, uuid, token, grown)
    assert commits.writes == 1  # inventory, properties, traits, ports: no separate lock and unlock
    assert db_api.get_port_by_address("b8:3f:d2:00:00:01").node_id == db_api.get_node(uuid).id
    assert "CUSTOM_GPU_COUNT_8" in db_api.get_node(uuid).traits


def _lldp_entry(chassis_mac: str, port: str, system: str) -> dict:
    """A parsed LLDP entry as the agent's listener stores it in inventory["lldp"][ifname]."""
    tlvs = [
        (lldp.TLV_CHASSIS_ID, b"\x04" + bytes.fromhex(chassis_mac.replace(":", ""))),
        (lldp.TLV_PORT_ID, b"\x05" + port.encode()),
        (lldp.TLV_TTL, b"\x00\x78"),
        (lldp.TLV_SYS_NAME, system.encode()),
    ]
    return lldp.parse_tlvs(tlvs)


def test_report_fills_local_link_connection_from_lldp(manager, hgx_inventory) -> None:
    uuid, token = _direct_lookup(manager, hgx_inventory)
    inv = copy.deepcopy(hgx_inventory)
    boot_nic = next(n for n in inv["nics"] if n["mac_address"] == HGX_BOOTIF)
    other = next(n for n in inv["nics"] if n.get("pci_address") and n["mac_address"] != HGX_BOOTIF)
    inv["lldp"] = {
        boot_nic["name"]: _lldp_entry("00:1c:73:aa:bb:cc", "Ethernet1/7", "leaf-r12"),
        other["name"]: {"raw": _lldp_entry("00:1c:73:aa:bb:cd", "Ethernet2/1", "leaf-r13")["raw"]},
        "no-such-nic": _lldp_entry("00:1c:73:aa:bb:ce", "Ethernet3/1", "leaf-r14"),
    }
    manager.report_inventory({}, uuid, token, inv)
    assert db_api.get_port_by_address(HGX_BOOTIF).local_link_connection == {
        "switch_id": "00:1c:73:aa:bb:cc",
        "port_id": "Ethernet1/7",
        "switch_info": "leaf-r12",
    }
    assert db_api.get_port_by_address(other["mac_address"]).local_link_connection == {
        "switch_id": "00:1c:73:aa:bb:cd",
        "port_id": "Ethernet2/1",
        "switch_info": "leaf-r13",
    }


def test_lldp_links_skip_garbled_entries() -> None:
    inv = {
        "nics": [
            {"name": "eth0", "mac_address": "52:54:00:00:00:01"},
            {"name": "eth1", "mac_address": "52:54:00:00:00:02"},
            {"name": "eth2", "mac_address": "not-a-mac"},
            "garbage",
        ],
        "lldp": {
            "eth0": {"raw": [[1, "zz"], "bad"]},
            "eth1": [[2, "0545746831"], [1, "04001c73aabbcc"]],
            "eth2": _lldp_entry("00:1c:73:aa:bb:cc", "Ethernet1/7", "leaf"),
        },
    }
    assert inventory_report.lldp_port_links(inv) == {
        "52:54:00:00:00:02": {"port_id": "Eth1", "switch_id": "00:1c:73:aa:bb:cc"}
    }
    assert inventory_report.lldp_port_links({"nics": [], "lldp": None}) == {}


# --- the inventory's canonical text: made once, hashed, stored as it is -------------------------

_KNOWN = {"b": [1, 2.5, None, True], "a": {"z": "é", "y": "x"}, "c": 10**20}


def _old_digest(inventory: dict) -> str:
    text = json.dumps(inventory, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_the_digest_keeps_its_definition() -> None:
    known = "a4430b649df7825e935564b51d9e08258b46e8040fb7874acca327e842298ea0"
    assert inventory_report.inventory_digest(_KNOWN) == _old_digest(_KNOWN) == known
    text, plain = inventory_report.canonical_inventory(_KNOWN)
    assert plain and json.loads(text) == _KNOWN
    assert text == '{"a":{"y":"x","z":"\\u00e9"},"b":[1,2.5,null,true],"c":100000000000000000000}'
    assert inventory_report.inventory_digest(_KNOWN, text) == known


def test_values_json_lacks_are_digested_as_before_but_not_plain() -> None:
    odd = {"when": datetime.datetime(2030, 1, 1), "x": 1}
    text, plain = inventory_report.canonical_inventory(odd)
    assert not plain and text == json.dumps(odd, sort_keys=True, separators=(",", ":"), default=str)
    assert inventory_report.inventory_digest(odd) == _old_digest(odd)


def test_the_report_stores_the_canonical_text(manager, hgx_inventory) -> None:
    uuid, token = _direct_lookup(manager, hgx_inventory)
    first = manager.report_inventory({}, uuid, token, hgx_inventory)
    node = db_api.get_node(uuid)
    assert node.driver_internal_info[inventory_report.INFO_INVENTORY_DIGEST] == _old_digest(hgx_inventory)
    canonical = json.dumps(hgx_inventory, sort_keys=True, separators=(",", ":"))
    with db_api.get_engine().connect() as conn:
        current = conn.exec_driver_sql("SELECT inventory FROM node_inventory").scalar()
        history = conn.exec_driver_sql("SELECT inventory FROM node_inventory_history").scalars().all()
    assert current == canonical and history == [canonical]
    assert db_api.get_node_inventory(uuid) == hgx_inventory
    again = manager.report_inventory({}, uuid, token, json.loads(json.dumps(hgx_inventory)))
    assert again == first  # the same inventory: acknowledged, not stored again
    assert len(db_api.list_inventory_history(uuid)) == 1
    # Another digest stored elsewhere meanwhile: the same inventory is stored again.
    internal = dict(node.driver_internal_info, **{inventory_report.INFO_INVENTORY_DIGEST: "0" * 64})
    with db_api.get_engine().begin() as conn:
        conn.execute(sqlalchemy.update(Node).where(Node.id == node.id).values(driver_internal_info=internal))
    manager.report_inventory({}, uuid, token, json.loads(json.dumps(hgx_inventory)))
    assert len(db_api.list_inventory_history(uuid)) == 2
    assert db_api.get_node_inventory(uuid) == hgx_inventory
    updated = db_api.get_node(uuid)
    assert updated.driver_internal_info[inventory_report.INFO_INVENTORY_DIGEST] == _old_digest(hgx_inventory)
    assert updated.updated_at > node.updated_at


def test_a_changed_report_on_a_reserved_node_stores_nothing(manager, hgx_inventory) -> None:
    uuid, token = _direct_lookup(manager, hgx_inventory)
    manager.report_inventory({}, uuid, token, hgx_inventory)
    db_api.reserve_node("someone-else", uuid)
    before = db_api.get_node(uuid)
    changed = copy.deepcopy(hgx_inventory)
    changed["memory"]["total_bytes"] += 4096
    with pytest.raises(messaging.ExpectedException) as err:
        manager.report_inventory({}, uuid, token, changed, {"changed": {"memory": 1}})
    assert isinstance(err.value.exc_info[1], exception.NodeLocked)
    after = db_api.get_node(uuid)
    assert (after.updated_at, after.driver_internal_info, after.traits) == (
        before.updated_at,
        before.driver_internal_info,
        before.traits,
    )
    assert len(db_api.list_inventory_history(uuid)) == 1


# --- inspection rules on every stored inventory -------------------------------------------------------


def test_inspection_rules_run_on_the_reported_inventory(conductor, hgx_inventory) -> None:
    from agent.db import inspection_rules as db_rules

    memory = {"op": "ge", "args": ["{inventory.memory.physical_mb}", 1048576]}
    db_rules.STORE.create(
        {
            "priority": 10,
            "conditions": [
                memory,
                {"op": "eq", "args": ["{inventory.system_vendor.manufacturer}", "{node.extra.x}"]},
            ],
            "actions": [{"op": "add-trait", "args": ["CUSTOM_NEVER"]}],
        }
    )
    db_rules.STORE.create(
        {
            "priority": 50,
            "conditions": [memory],
            "actions": [
                {"op": "add-trait", "args": ["CUSTOM_BIG_MEMORY"]},
                {"op": "set-attribute", "args": ["/extra/rack", "r7"]},
                {"op": "set-capability", "args": ["gpu", "h100"]},
                {"op": "set-plugin-data", "args": ["/ruled", "{inventory.cpu.count}"]},
            ],
        }
    )
    answer = _lookup(conductor, hgx_inventory)
    uuid, token = answer["node"]["uuid"], answer["agent_token"]
    result = conductor.report_inventory({}, uuid, token, hgx_inventory, None)
    assert "CUSTOM_BIG_MEMORY" in result["traits"] and "CUSTOM_NEVER" not in result["traits"]
    node = db_api.get_node(uuid)
    assert node.extra["rack"] == "r7"
    assert node.properties["capabilities"] == "boot_mode:uefi,gpu:h100"
    plugin = db_api.get_node_plugin_data(node.id)
    assert plugin["ruled"] == 224 and plugin["all_interfaces"]
    db_rules.STORE.create(
        {"priority": 99, "conditions": [memory], "actions": [{"op": "fail", "args": ["too big"]}]}
    )
    changed = copy.deepcopy(hgx_inventory)
    changed["gpus"] = changed["gpus"][:4]
    conductor.report_inventory({}, uuid, token, changed, {"removed": {"gpus": ["0000:ba:00.0"]}})
    assert "too big" in db_api.get_node(uuid).last_error
