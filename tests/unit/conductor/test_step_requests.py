"""What a provision request asks of the steps: user deploy_steps run through the step machinery (priority and
args laid over the driver's) or are refused with a clear error, and disable_ramdisk is honoured or refused."""

from __future__ import annotations

import oslo_messaging as messaging
import pytest

from agent.common import exception, states
from agent.conductor import deployments, task_manager
from tests.unit.conductor.deploy_stack import Stack


@pytest.fixture
def stack(tmp_path):
    """The in-process stack with one available node and an image to deploy."""
    s = Stack(tmp_path)
    s.set_image()
    yield s
    s.close()


def _deploy(stack, steps) -> None:
    stack.manager.change_provision_state({}, stack.node.uuid, "active", deploy_steps=steps)


def _refused(stack, steps) -> exception.KilnException:
    """The error the conductor sends back (over RPC) for a deploy with ``steps``."""
    with pytest.raises(messaging.ExpectedException) as err:
        _deploy(stack, steps)
    return err.value.exc_info[1]


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        (
            [{"interface": "deploy", "step": "make_coffee", "priority": 10}],
            ["deploy.make_coffee", "write_image"],
        ),
        (
            [{"interface": "bios", "step": "apply_configuration", "priority": 10}],
            ["bios.apply_configuration"],
        ),
        ([{"interface": "deploy", "step": "write_image"}], ['"priority"']),
        ([{"interface": "deploy", "step": "deploy", "priority": 0}], ["deploy.deploy", "cannot be disabled"]),
        ([{"interface": "deploy", "step": "write_image", "priority": 80, "args": {"speed": 1}}], ["speed"]),
        ([{"interface": "deploy", "step": "write_image", "priority": -1}], ["0 or more"]),
        ([{"interface": "deploy"}], ["deploy_steps[0]", '"step"']),
        ("write_image", ["must be a list"]),
    ],
)
def test_bad_user_steps_are_refused_and_the_node_stays(stack, steps, words) -> None:
    err = _refused(stack, steps)
    assert isinstance(err, exception.Invalid)
    assert err.code == 400
    for word in words:
        assert word in str(err)
    assert stack.node.uuid in str(err)
    node = stack.node_now()
    assert node.provision_state == states.AVAILABLE
    assert "deploy_steps" not in (node.instance_info or {})


def test_user_steps_change_the_order_and_switch_steps_off(stack) -> None:
    steps = [
        {"interface": "deploy", "step": "switch_to_tenant_network", "priority": 0},
        {"interface": "deploy", "step": "tear_down_agent", "priority": 15},
    ]
    _deploy(stack, steps)
    stack.wait_state(states.DEPLOYWAIT)
    with task_manager.acquire({}, stack.node.uuid, shared=True, host="x") as task:
        names = [s["step"] for s in deployments.ordered_deploy_steps(task)]
    assert names == ["deploy", "write_image", "prepare_instance_boot", "boot_instance", "tear_down_agent"]
    stack.boot_agent()
    node = stack.drive(states.ACTIVE, states.DEPLOYFAIL)
    assert node.provision_state == states.ACTIVE, node.last_error
    assert node.instance_info["deploy_steps"] == steps


def test_a_deploy_without_user_steps_forgets_the_last_ones(stack) -> None:
    _deploy(stack, [{"interface": "deploy", "step": "switch_to_tenant_network", "priority": 0}])
    stack.wait_state(states.DEPLOYWAIT)
    stack.boot_agent()
    stack.drive(states.ACTIVE, states.DEPLOYFAIL)
    stack.manager.change_provision_state({}, stack.node.uuid, "rebuild")
    stack.wait_state(states.DEPLOYWAIT)
    with task_manager.acquire({}, stack.node.uuid, shared=True, host="x") as task:
        names = [s["step"] for s in deployments.ordered_deploy_steps(task)]
    assert "switch_to_tenant_network" in names
    assert "deploy_steps" not in stack.node_now().instance_info


def test_disable_ramdisk_is_refused_naming_the_agent_steps(stack) -> None:
    from agent.db import api as db_api

    db_api.update_node(stack.node.uuid, {"provision_state": states.MANAGEABLE})
    steps = [{"interface": "deploy", "step": "erase_devices_metadata"}]
    with pytest.raises(messaging.ExpectedException) as err:
        stack.manager.change_provision_state(
            {}, stack.node.uuid, "clean", clean_steps=steps, disable_ramdisk=True
        )
    exc = err.value.exc_info[1]
    assert isinstance(exc, exception.InvalidParameterValue)
    assert "deploy.erase_devices_metadata" in str(exc)
    assert "disable_ramdisk" in str(exc)
    assert stack.node_now().provision_state == states.MANAGEABLE


def test_disable_ramdisk_false_cleans_through_the_agent(stack) -> None:
    from agent.db import api as db_api

    db_api.update_node(stack.node.uuid, {"provision_state": states.MANAGEABLE})
    steps = [{"interface": "deploy", "step": "erase_devices_metadata"}]
    stack.manager.change_provision_state(
        {}, stack.node.uuid, "clean", clean_steps=steps, disable_ramdisk=False
    )
    stack.wait_state(states.CLEANWAIT)
    stack.boot_agent()
    node = stack.drive(states.MANAGEABLE, states.CLEANFAIL)
    assert node.provision_state == states.MANAGEABLE, node.last_error


def test_disable_ramdisk_with_another_target_is_refused(stack) -> None:
    with pytest.raises(messaging.ExpectedException) as err:
        stack.manager.change_provision_state({}, stack.node.uuid, "active", disable_ramdisk=True)
    assert 'only valid with targets "clean" and "service"' in str(err.value.exc_info[1])
    assert stack.node_now().provision_state == states.AVAILABLE
