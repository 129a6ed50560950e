"""In-band inspection by the agent: boot it, take its inventory, power off, manageable."""

from __future__ import annotations

import datetime

import pytest

from agent.common import states
from agent.conductor import timeouts
from agent.conductor.drivers import fake as fake_drivers
from agent.db import api as db_api
from tests.unit.conductor.deploy_stack import Stack


@pytest.fixture
def stack(tmp_path):
    """The in-process stack; its node is manageable."""
    s = Stack(tmp_path)
    db_api.update_node(s.node.uuid, {"provision_state": states.MANAGEABLE})
    yield s
    s.close()


def test_inspect_boots_agent_stores_inventory_and_powers_off(stack) -> None:
    stack.manager.change_provision_state({}, stack.node.uuid, "inspect")
    node = stack.wait_state(states.INSPECTWAIT)
    assert node.power_state == states.POWER_ON
    assert node.driver_internal_info[fake_drivers.BOOT_DEVICE_KEY] == {
        "boot_device": "pxe",
        "persistent": False,
    }
    assert node.inspection_started_at is not None
    agent = stack.boot_agent()
    answer = agent.report_inventory()
    assert answer["stored"] is True
    node = stack.wait_state(states.MANAGEABLE)
    assert node.power_state == states.POWER_OFF
    assert node.last_error is None
    assert node.inspection_finished_at is not None
    stored = db_api.get_node_inventory(node.id)
    assert stored["system"]["uuid"] == agent.inventory["system"]["uuid"]
    assert node.properties.get("memory_mb")


def test_inspect_wait_timeout(stack) -> None:
    stack.manager.change_provision_state({}, stack.node.uuid, "inspect")
    stack.wait_state(states.INSPECTWAIT)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    assert timeouts.check_callback_timeouts(now=later) == [stack.node.uuid]
    node = stack.node_now()
    assert node.provision_state == states.INSPECTFAIL
    assert "[deploy]inspect_wait_timeout" in node.last_error
    assert node.power_state == states.POWER_OFF


def test_abort_inspection(stack) -> None:
    stack.manager.change_provision_state({}, stack.node.uuid, "inspect")
    stack.wait_state(states.INSPECTWAIT)
    stack.manager.change_provision_state({}, stack.node.uuid, "abort")
    node = stack.wait_state(states.INSPECTFAIL)
    assert "Inspection of node" in node.last_error and "aborted by request" in node.last_error
    assert node.power_state == states.POWER_OFF
