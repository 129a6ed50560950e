"""Deploy templates at deploy time: the instance's traits that the node has select templates whose
steps join the deployment (the user's deploy_steps still win); a template naming a step the node
does not offer refuses the deployment."""

from __future__ import annotations

import oslo_messaging as messaging
import pytest

from agent.common import states
from agent.conductor import deployments, task_manager
from agent.db import api as db_api
from agent.db import deploy_templates
from tests.unit.conductor.deploy_stack import Stack


@pytest.fixture
def stack(tmp_path):
    """The in-process stack with one available node and an image to deploy."""
    s = Stack(tmp_path)
    s.set_image()
    yield s
    s.close()


def _template(name, *steps):
    deploy_templates.STORE.create(
        {"name": name, "steps": [{"interface": "deploy", "args": {}, **s} for s in steps]}
    )


def _ask_traits(stack, node_traits, instance_traits):
    db_api.set_node_traits(stack.node.uuid, node_traits)
    info = dict(stack.node_now().instance_info or {})
    db_api.update_node(stack.node.uuid, {"instance_info": {**info, "traits": instance_traits}})


def _names(stack):
    with task_manager.acquire({}, stack.node.uuid, shared=True, host="x") as task:
        return [(s["step"], s["priority"]) for s in deployments.ordered_deploy_steps(task)]


def test_traits_select_templates_and_user_steps_win(stack) -> None:
    _template("CUSTOM_NO_TENANT_NET", {"step": "switch_to_tenant_network", "priority": 0})
    _template("CUSTOM_LATE_TEARDOWN", {"step": "tear_down_agent", "priority": 15})
    _template("CUSTOM_UNASKED", {"step": "write_image", "priority": 0})
    _ask_traits(
        stack,
        ["CUSTOM_NO_TENANT_NET", "CUSTOM_LATE_TEARDOWN"],
        ["CUSTOM_NO_TENANT_NET", "CUSTOM_LATE_TEARDOWN"],
    )
    user = [{"interface": "deploy", "step": "tear_down_agent", "priority": 12}]
    stack.manager.change_provision_state({}, stack.node.uuid, "active", deploy_steps=user)
    stack.wait_state(states.DEPLOYWAIT)
    steps = _names(stack)
    assert [n for n, _ in steps] == [
        "deploy",
        "write_image",
        "prepare_instance_boot",
        "boot_instance",
        "tear_down_agent",
    ]
    assert dict(steps)["tear_down_agent"] == 12
    stack.boot_agent()
    node = stack.drive(states.ACTIVE, states.DEPLOYFAIL)
    assert node.provision_state == states.ACTIVE, node.last_error


def test_a_template_the_node_cannot_run_refuses_the_deploy(stack) -> None:
    deploy_templates.STORE.create(
        {
            "name": "CUSTOM_HT_ON",
            "steps": [{"interface": "bios", "step": "apply_configuration", "args": {}, "priority": 150}],
        }
    )
    _ask_traits(stack, ["CUSTOM_HT_ON"], ["CUSTOM_HT_ON"])
    with pytest.raises(messaging.ExpectedException) as err:
        stack.manager.change_provision_state({}, stack.node.uuid, "active")
    assert "deploy template step[0] bios.apply_configuration" in str(err.value.exc_info[1])
    assert stack.node_now().provision_state == states.AVAILABLE


def test_an_instance_trait_the_node_lacks_selects_nothing(stack) -> None:
    _template("CUSTOM_NO_TENANT_NET", {"step": "switch_to_tenant_network", "priority": 0})
    _ask_traits(stack, [], ["CUSTOM_NO_TENANT_NET"])
    with task_manager.acquire({}, stack.node.uuid, shared=True, host="x") as task:
        assert deployments.template_steps(task.node) == []
