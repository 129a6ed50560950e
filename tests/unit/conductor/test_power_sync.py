"""The power state sync on a real SQLite database: power and health read, faults, maintenance, recovery."""

from __future__ import annotations

import socket

import pytest
from oslo_config import cfg

from agent.common import config, states
from agent.conductor import hash_ring, power_sync
from agent.conductor.drivers import fake
from agent.db import api as db_api
from agent.db import history as db_history
from tests.unit.schema import migrated_db

CONF = cfg.CONF
ME = "cond-me"


@pytest.fixture
def db(tmp_path):
    """A migrated SQLite database with this conductor registered (fake-hardware and redfish)."""
    config.register_opts(CONF)
    CONF([], project="kiln")
    CONF.set_override("enabled_hardware_types", ["fake-hardware", "redfish"], group="conductor")
    CONF.set_override("host", ME, group="conductor")
    for iface in ("power", "management"):
        CONF.set_override(f"enabled_{iface}_interfaces", ["fake", "redfish"], group="conductor")
    migrated_db(tmp_path)
    db_api.register_conductor(ME, ["fake-hardware", "redfish"])
    power_sync._failures.clear()
    yield
    db_api.dispose()
    CONF.clear_override("enabled_hardware_types", group="conductor")
    CONF.clear_override("host", group="conductor")
    for iface in ("power", "management"):
        CONF.clear_override(f"enabled_{iface}_interfaces", group="conductor")


def _ring() -> hash_ring.HashRingManager:
    return hash_ring.HashRingManager(conductors=lambda: [{"hostname": ME}], reset_interval=3600)


def _dead_address() -> str:
    with socket.socket() as sock:  # a port nothing listens on: every read is refused
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _redfish_node(address: str, **values):
    return db_api.create_node(
        {
            "driver": "redfish",
            "power_interface": "redfish",
            "management_interface": "redfish",
            "provision_state": states.MANAGEABLE,
            "power_state": states.POWER_ON,
            "driver_info": {"redfish_address": address, "redfish_system_id": "/redfish/v1/Systems/x"},
            **values,
        }
    )


def test_the_bmcs_power_state_replaces_a_stale_one(db) -> None:
    node = db_api.create_node(
        {
            "driver": "fake-hardware",
            "provision_state": states.AVAILABLE,
            "power_state": states.POWER_ON,
            "driver_internal_info": {fake.POWER_KEY: states.POWER_OFF},
        }
    )
    assert power_sync.sync_power_states(ME, _ring()) == {node.uuid: "power"}
    assert db_api.get_node(node.uuid).power_state == states.POWER_OFF
    assert power_sync.sync_power_states(ME, _ring()) == {}  # in step now: nothing to change


def test_nodes_in_enroll_transient_states_or_locked_are_left_alone(db) -> None:
    enroll = _redfish_node(_dead_address(), provision_state=states.ENROLL)
    waiting = _redfish_node(_dead_address(), provision_state=states.CLEANWAIT)
    locked = _redfish_node(_dead_address(), reservation="someone")
    for _ in range(4):
        assert power_sync.sync_power_states(ME, _ring()) == {}
    for node in (enroll, waiting, locked):
        assert not db_api.get_node(node.uuid).maintenance


def test_three_failed_reads_put_the_node_in_maintenance_with_a_history_event(db) -> None:
    address = _dead_address()
    node = _redfish_node(address)
    assert power_sync.sync_power_states(ME, _ring()) == {}
    assert power_sync.sync_power_states(ME, _ring()) == {}
    assert not db_api.get_node(node.uuid).maintenance  # two failures: not yet
    assert power_sync.sync_power_states(ME, _ring()) == {node.uuid: "maintenance"}
    failed = db_api.get_node(node.uuid)
    assert failed.maintenance and failed.fault == power_sync.POWER_FAILURE
    assert "3 consecutive power state reads" in failed.maintenance_reason
    assert address in failed.maintenance_reason
    events = db_history.list_events(failed.id)
    assert [(e["severity"], e["event_type"], e["conductor"]) for e in events] == [("ERROR", "monitoring", ME)]
    assert events[0]["event"] == failed.maintenance_reason


def test_a_readable_bmc_again_takes_the_node_out_of_maintenance(db) -> None:
    node = db_api.create_node(
        {
            "driver": "fake-hardware",
            "provision_state": states.ACTIVE,
            "power_state": states.POWER_ON,
            "maintenance": True,
            "maintenance_reason": "During sync_power_state ...",
            "fault": power_sync.POWER_FAILURE,
        }
    )
    other = db_api.create_node(  # maintenance set by an operator: never touched
        {"driver": "fake-hardware", "provision_state": states.ACTIVE, "maintenance": True}
    )
    assert power_sync.sync_power_states(ME, _ring()) == {node.uuid: "recovered"}
    recovered = db_api.get_node(node.uuid)
    assert not recovered.maintenance and recovered.fault is None and recovered.maintenance_reason is None
    assert [e["severity"] for e in db_history.list_events(recovered.id)] == ["INFO"]
    assert db_api.get_node(other.uuid).maintenance


def test_a_successful_read_resets_the_failure_count(db) -> None:
    node = _redfish_node(_dead_address())
    power_sync.sync_power_states(ME, _ring())
    power_sync.sync_power_states(ME, _ring())
    fake_hw = {"driver": "fake-hardware", "power_interface": "fake", "management_interface": "fake"}
    db_api.update_node(node.uuid, fake_hw)  # readable now
    power_sync.sync_power_states(ME, _ring())
    redfish = {"driver": "redfish", "power_interface": "redfish", "management_interface": "redfish"}
    db_api.update_node(node.uuid, redfish)
    power_sync.sync_power_states(ME, _ring())
    power_sync.sync_power_states(ME, _ring())
    assert not db_api.get_node(node.uuid).maintenance


def test_history_keeps_at_most_max_entries(db) -> None:
    CONF.set_override("node_history_max_entries", 3, group="conductor")
    try:
        node = db_api.create_node({"driver": "fake-hardware"})
        for i in range(5):
            db_history.record_event(node.id, f"event {i}", "provisioning")
        assert [e["event"] for e in db_history.list_events(node.id)] == ["event 2", "event 3", "event 4"]
    finally:
        CONF.clear_override("node_history_max_entries", group="conductor")
