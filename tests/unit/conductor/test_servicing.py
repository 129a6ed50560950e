"""Servicing an active node: conductor steps, agent steps in the ramdisk, hold/unhold, abort, failures."""

from __future__ import annotations

import datetime

import oslo_messaging as messaging
import pytest
from oslo_config import cfg

from agent.common import exception, states
from agent.conductor import agent_commands, cleaning, hash_ring, periodics, servicing, timeouts
from agent.conductor.drivers import fake as fake_drivers
from agent.db import api as db_api
from tests.unit.conductor.deploy_stack import Stack

CONF = cfg.CONF
HOLD = {"interface": "deploy", "step": "hold"}
ROOT_DEVICE = {"interface": "deploy", "step": "get_root_device"}


@pytest.fixture
def stack(tmp_path):
    """The in-process stack; its node is active and powered on, booting from disk."""
    s = Stack(tmp_path)
    db_api.update_node(
        s.node.uuid,
        {
            "provision_state": states.ACTIVE,
            "power_state": states.POWER_ON,
            "instance_info": {"image_source": "http://example.invalid/disk.raw"},
            "driver_internal_info": {
                fake_drivers.POWER_KEY: states.POWER_ON,
                fake_drivers.BOOT_DEVICE_KEY: {"boot_device": "disk", "persistent": True},
            },
        },
    )
    yield s
    s.close()
    CONF.clear_override("service_callback_timeout", group="conductor")


def _service(stack, steps) -> None:
    stack.manager.change_provision_state({}, stack.node.uuid, "service", service_steps=steps)


def _refused(stack, verb: str = "service", **kwargs) -> exception.KilnException:
    """The error the conductor sends back (over RPC) for provision ``verb`` with ``kwargs``."""
    with pytest.raises(messaging.ExpectedException) as err:
        stack.manager.change_provision_state({}, stack.node.uuid, verb, **kwargs)
    return err.value.exc_info[1]


def _assert_back_in_instance(node) -> None:
    assert node.provision_state == states.ACTIVE, node.last_error
    assert node.target_provision_state is None
    assert node.power_state == states.POWER_ON
    internal = node.driver_internal_info
    assert internal[fake_drivers.BOOT_DEVICE_KEY] == {"boot_device": "disk", "persistent": True}
    for key in (*servicing.SERVICE_KEYS, *agent_commands.OPERATION_KEYS):
        assert key not in internal


def test_conductor_steps_hold_then_unhold_without_ramdisk(stack) -> None:
    _service(stack, [HOLD, {"interface": "power", "step": "power_off"}])
    node = stack.wait_state(states.SERVICEHOLD)
    assert node.target_provision_state == states.ACTIVE
    assert node.driver_internal_info[servicing.STEP_KEY]["step"] == "hold"
    assert node.driver_internal_info[servicing.RAMDISK_KEY] is False
    assert node.power_state == states.POWER_ON  # nothing ran past the hold
    # No ramdisk runs, so no heartbeat is missing: the held node is not flagged.
    ring = hash_ring.HashRingManager(conductors=lambda: [{"hostname": "me"}], reset_interval=3600)
    an_hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    db_api.update_node(stack.node.uuid, {"last_heartbeat_at": None, "provision_updated_at": an_hour_ago})
    assert periodics.flag_missing_heartbeats("me", ring, timeout_s=1) == []
    stack.manager.change_provision_state({}, stack.node.uuid, "unhold")
    node = stack.wait_state(states.ACTIVE)
    assert node.last_error is None
    assert node.power_state == states.POWER_OFF  # the step after the hold ran
    assert servicing.STEPS_KEY not in node.driver_internal_info


def test_agent_step_boots_the_ramdisk_and_the_instance_after(stack) -> None:
    _service(stack, [ROOT_DEVICE])
    node = stack.wait_state(states.SERVICEWAIT)
    assert node.driver_internal_info[fake_drivers.BOOT_DEVICE_KEY] == {
        "boot_device": "pxe",
        "persistent": False,
    }
    stack.boot_agent()
    node = stack.drive(states.ACTIVE, states.SERVICEFAIL)
    _assert_back_in_instance(node)
    assert node.last_error is None


def test_agent_step_then_hold_then_unhold(stack) -> None:
    _service(stack, [ROOT_DEVICE, HOLD, ROOT_DEVICE])
    stack.wait_state(states.SERVICEWAIT)
    stack.boot_agent()
    node = stack.drive(states.SERVICEHOLD, states.SERVICEFAIL)
    assert node.provision_state == states.SERVICEHOLD, node.last_error
    assert node.driver_internal_info[servicing.INDEX_KEY] == 2
    stack.manager.change_provision_state({}, stack.node.uuid, "unhold")
    assert stack.wait_state(states.SERVICEWAIT).provision_state == states.SERVICEWAIT
    node = stack.drive(states.ACTIVE, states.SERVICEFAIL)
    _assert_back_in_instance(node)


def test_failed_agent_step_goes_to_service_failed_then_abort_boots_the_instance(stack) -> None:
    bad = {**ROOT_DEVICE, "args": {"root_device": {"serial": "no-such-disk"}}}
    _service(stack, [bad])
    stack.wait_state(states.SERVICEWAIT)
    stack.boot_agent()
    node = stack.drive(states.SERVICEFAIL, states.ACTIVE)
    assert node.provision_state == states.SERVICEFAIL
    assert "Service step deploy.get_root_device failed" in node.last_error
    assert node.target_provision_state == states.ACTIVE
    stack.manager.change_provision_state({}, stack.node.uuid, "abort")
    node = stack.wait_state(states.ACTIVE)
    _assert_back_in_instance(node)
    assert "Service step deploy.get_root_device failed" in node.last_error  # kept, as Ironic does


def test_abort_in_service_hold_returns_to_active(stack) -> None:
    _service(stack, [HOLD])
    stack.wait_state(states.SERVICEHOLD)
    stack.manager.change_provision_state({}, stack.node.uuid, "abort")
    node = stack.wait_state(states.ACTIVE)
    assert "aborted by request in state service hold" in node.last_error
    assert node.power_state == states.POWER_ON  # no ramdisk was booted: the instance was left alone
    assert servicing.STEPS_KEY not in node.driver_internal_info


def test_abort_in_service_wait_boots_the_instance_again(stack) -> None:
    _service(stack, [ROOT_DEVICE])
    stack.wait_state(states.SERVICEWAIT)
    stack.manager.change_provision_state({}, stack.node.uuid, "abort")
    node = stack.wait_state(states.ACTIVE)
    _assert_back_in_instance(node)
    assert "aborted by request in state service wait" in node.last_error


def test_unknown_step_or_missing_steps_are_refused_and_the_node_stays_active(stack) -> None:
    error = _refused(stack, service_steps=[{"interface": "deploy", "step": "erase_devices"}])
    assert isinstance(error, exception.InvalidParameterValue)
    assert "service_steps[0] deploy.erase_devices is not a known service step" in str(error)
    error = _refused(stack, service_steps=[{"interface": "bios", "step": "apply_configuration"}])
    assert "service_steps[0] bios.apply_configuration is not offered by bios_interface no-bios" in str(error)
    assert isinstance(_refused(stack, service_steps=None), exception.MissingParameterValue)
    error = _refused(stack, service_steps=[ROOT_DEVICE], disable_ramdisk=True)
    assert "disable_ramdisk cannot be honoured" in str(error)
    assert stack.node_now().provision_state == states.ACTIVE


def test_agent_steps_need_an_agent_deploy_interface(stack) -> None:
    db_api.update_node(stack.node.uuid, {"deploy_interface": "fake"})
    assert "deploy interface fake cannot boot one" in str(_refused(stack, service_steps=[ROOT_DEVICE]))
    _service(stack, [{"interface": "power", "step": "reboot"}])  # conductor steps need no agent
    node = stack.wait_state(states.ACTIVE)
    assert node.last_error is None and node.power_state == states.POWER_ON


def test_unhold_and_service_are_refused_outside_their_states(stack) -> None:
    error = _refused(stack, "unhold")
    assert isinstance(error, exception.InvalidStateRequested)
    assert '"unhold"' in str(error) and '"active"' in str(error)
    db_api.update_node(stack.node.uuid, {"provision_state": states.AVAILABLE})
    assert isinstance(_refused(stack, service_steps=[HOLD]), exception.InvalidStateRequested)


def test_service_callback_timeout_fails_servicing(stack) -> None:
    CONF.set_override("service_callback_timeout", 30, group="conductor")
    _service(stack, [ROOT_DEVICE])
    stack.wait_state(states.SERVICEWAIT)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=31)
    assert timeouts.check_callback_timeouts(now=later) == [stack.node.uuid]
    node = stack.node_now()
    assert node.provision_state == states.SERVICEFAIL
    assert "[conductor]service_callback_timeout" in node.last_error
    assert node.power_state == states.POWER_OFF


def test_clean_hold_step_and_unhold(stack) -> None:
    db_api.update_node(stack.node.uuid, {"provision_state": states.MANAGEABLE})
    steps = [HOLD, {"interface": "deploy", "step": "erase_devices_metadata"}]
    stack.manager.change_provision_state({}, stack.node.uuid, "clean", clean_steps=steps)
    stack.wait_state(states.CLEANWAIT)
    stack.boot_agent()
    node = stack.drive(states.CLEANHOLD, states.CLEANFAIL)
    assert node.provision_state == states.CLEANHOLD, node.last_error
    assert node.driver_internal_info[cleaning.STEP_KEY]["step"] == "hold"
    stack.manager.change_provision_state({}, stack.node.uuid, "unhold")
    assert stack.wait_state(states.CLEANWAIT).provision_state == states.CLEANWAIT
    node = stack.drive(states.MANAGEABLE, states.CLEANFAIL)
    assert node.provision_state == states.MANAGEABLE, node.last_error


def test_abort_in_wait_call_back_fails_the_deploy(stack) -> None:
    # Ironic's table also lets "abort" end a deploy that waits for its agent ("deploy failed").
    db_api.update_node(
        stack.node.uuid, {"provision_state": states.AVAILABLE, "power_state": states.POWER_OFF}
    )
    stack.set_image()
    stack.manager.change_provision_state({}, stack.node.uuid, "active")
    stack.wait_state(states.DEPLOYWAIT)
    stack.manager.change_provision_state({}, stack.node.uuid, "abort")
    node = stack.wait_state(states.DEPLOYFAIL)
    assert "Deployment of node" in node.last_error and "state wait call-back" in node.last_error
    assert node.power_state == states.POWER_OFF
