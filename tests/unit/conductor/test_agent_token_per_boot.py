"""Every boot of the ramdisk gets a new agent token, as in Ironic: the token is cleared on power-off and
reboot, lookup issues one when none is set, and the old token is rejected."""

from __future__ import annotations

import oslo_messaging as messaging
import pytest

from agent.common import exception, states
from agent.conductor import task_manager
from agent.conductor.power_actions import do_power_change
from tests.unit.conductor.deploy_stack import Stack


@pytest.fixture
def stack(tmp_path):
    """The in-process stack with one available node and an image to deploy."""
    s = Stack(tmp_path)
    s.set_image()
    yield s
    s.close()


def _rejected(stack, token: str) -> bool:
    try:
        stack.agent.conductor.report_inventory({}, stack.node.uuid, token, stack.agent.inventory)
    except exception.InvalidAgentToken:
        return True
    except messaging.RemoteError as exc:
        return exc.exc_type == "InvalidAgentToken"
    return False


def test_deploy_undeploy_deploy_gets_a_token_per_boot(stack) -> None:
    stack.manager.change_provision_state({}, stack.node.uuid, "active")
    stack.wait_state(states.DEPLOYWAIT)
    first = stack.boot_agent().token
    node = stack.drive(states.ACTIVE, states.DEPLOYFAIL)
    assert node.provision_state == states.ACTIVE, node.last_error
    assert node.agent_token_hash is None  # the node rebooted into its OS: the ramdisk's token is gone
    assert _rejected(stack, first)

    stack.manager.change_provision_state({}, stack.node.uuid, "deleted")
    stack.wait_state(states.CLEANWAIT)
    second = stack.boot_agent().token
    assert second and second != first
    node = stack.drive(states.AVAILABLE, states.CLEANFAIL)
    assert node.provision_state == states.AVAILABLE, node.last_error
    assert node.agent_token_hash is None  # cleaning powered the node off

    # a ramdisk whose state directory is wiped at each boot: a new agent, a new lookup, a new token
    stack.agent.stop()
    stack.agent = None
    stack.set_image()  # undeploy emptied instance_info
    stack.manager.change_provision_state({}, stack.node.uuid, "active")
    stack.wait_state(states.DEPLOYWAIT)
    third = stack.boot_agent().token
    assert third not in (first, second)
    node = stack.drive(states.ACTIVE, states.DEPLOYFAIL)
    assert node.provision_state == states.ACTIVE, node.last_error
    assert _rejected(stack, second)


@pytest.mark.parametrize("target", [states.POWER_OFF, states.REBOOT, states.SOFT_POWER_OFF])
def test_power_off_and_reboot_clear_the_token(stack, target) -> None:
    stack.manager.change_provision_state({}, stack.node.uuid, "active")
    stack.wait_state(states.DEPLOYWAIT)
    token = stack.boot_agent().token
    assert stack.node_now().agent_token_hash
    with task_manager.acquire({}, stack.node.uuid, purpose="test power") as task:
        do_power_change(task, target, None)
    assert stack.node_now().agent_token_hash is None
    assert _rejected(stack, token)


def test_power_on_keeps_the_token(stack) -> None:
    stack.manager.change_provision_state({}, stack.node.uuid, "active")
    stack.wait_state(states.DEPLOYWAIT)
    token = stack.boot_agent().token
    with task_manager.acquire({}, stack.node.uuid, purpose="test power") as task:
        do_power_change(task, states.POWER_ON, None)
    assert stack.node_now().agent_token_hash
    assert not _rejected(stack, token)
