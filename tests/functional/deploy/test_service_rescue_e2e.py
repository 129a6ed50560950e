"""Servicing and rescue of a deployed simulated Redfish node over RabbitMQ, driven with openstacksdk.

One node, module-scoped processes (tests.functional.deploy.conftest): it is provided (cleaned by
its agent) and deployed, then serviced with an agent step and a hold (unhold, abort), failed in
servicing and aborted back to active, rescued (the real kiln-agent writes the password's hash into
its tree's etc/shadow) and unrescued, and a rescue whose agent never calls back times out.
"""

from __future__ import annotations

import time

import pytest
from passlib.hash import sha256_crypt

from .conftest import CALLBACK_TIMEOUT, MAC
from .test_deploy_e2e import _driver_info, _logs, _make_image, _wait_state

pytestmark = pytest.mark.slow
WAIT = 240
PASSWORD = "r3scue-Me-now"  # noqa: S105 - a test password
ROOT_DEVICE = {"interface": "deploy", "step": "get_root_device", "args": {}}
HOLD = {"interface": "deploy", "step": "hold", "args": {}}


@pytest.fixture(scope="module")
def node(stack):
    """The node enrolled, provided and deployed with a small raw image -> active."""
    bm = stack["conn"].baremetal
    sha = _make_image(stack["images"] / "disk.raw")
    created = bm.create_node(
        name="sim-node",
        driver="redfish",
        driver_info=_driver_info(stack),
        boot_interface="ipxe",
        deploy_interface="direct",
        network_interface="flat",
        instance_info={"image_source": f"{stack['image_url']}/disk.raw", "image_checksum": sha},
    )
    bm.create_port(node_id=created.id, address=MAC, pxe_enabled=True)
    bm.set_node_provision_state(created, "manage", wait=True, timeout=WAIT)
    bm.set_node_provision_state(created, "provide", wait=True, timeout=WAIT)
    node = bm.set_node_provision_state(created, "active", wait=True, timeout=WAIT)
    assert node.provision_state == "active", node.last_error
    return node


def _settled(bm, node, state: str):
    """The node resting in ``state`` with no lock held (a worker may still finish after the move)."""
    deadline = time.monotonic() + WAIT
    now = _wait_state(bm, node, state)
    while now.reservation is not None and time.monotonic() < deadline:
        time.sleep(0.5)
        now = bm.get_node(node.id)
    assert now.provision_state == state and now.reservation is None, (now.provision_state, now.last_error)
    return now


def _verb(stack, node, target: str, **kwargs):
    """PUT .../states/provision through openstacksdk's Node resource (it knows service and unhold)."""
    bm = stack["conn"].baremetal
    return bm.get_node(node.id).set_provision_state(bm, target, **kwargs)


def _assert_in_instance(stack, node) -> None:
    bm = stack["conn"].baremetal
    now = bm.get_node(node.id)
    assert now.provision_state == "active", now.last_error
    assert now.power_state == "power on"
    assert bm.get_node_boot_device(node) == {"boot_device": "disk", "persistent": True}
    assert not stack["node"].agent_running()  # booted from disk: no ramdisk


def test_service_agent_step_hold_unhold_and_abort(stack, node) -> None:
    bm = stack["conn"].baremetal
    sim = stack["node"]
    runs = sim.agent_runs
    _verb(stack, node, "service", service_steps=[ROOT_DEVICE, HOLD])
    held = _wait_state(bm, node, "service hold")
    assert held.provision_state == "service hold", held.last_error
    assert held.target_provision_state == "active"
    assert sim.agent_runs == runs + 1 and sim.agent_running()  # the agent ramdisk ran the step
    assert held.service_step["step"] == "hold"
    _verb(stack, node, "unhold")
    done = _settled(bm, node, "active")
    assert done.last_error is None
    _assert_in_instance(stack, node)

    _verb(stack, node, "service", service_steps=[HOLD])  # a conductor step only: no ramdisk
    _wait_state(bm, node, "service hold")
    assert sim.agent_runs == runs + 1
    _verb(stack, node, "abort")
    aborted = _settled(bm, node, "active")
    assert "aborted by request in state service hold" in aborted.last_error
    _assert_in_instance(stack, node)


def test_failed_service_step_then_abort_returns_to_active(stack, node) -> None:
    bm = stack["conn"].baremetal
    bad = {**ROOT_DEVICE, "args": {"root_device": {"serial": "no-such-disk"}}}
    _verb(stack, node, "service", service_steps=[bad])
    failed = _wait_state(bm, node, "service failed")
    assert failed.provision_state == "service failed"
    assert "Service step deploy.get_root_device failed" in failed.last_error
    assert failed.power_state == "power off"
    _verb(stack, node, "abort")
    _settled(bm, node, "active")
    _assert_in_instance(stack, node)


def test_rescue_sets_the_password_then_unrescue(stack, node) -> None:
    bm = stack["conn"].baremetal
    sim = stack["node"]
    _verb(stack, node, "rescue", rescue_password=PASSWORD)
    rescued = _wait_state(bm, node, "rescue")
    assert rescued.provision_state == "rescue", rescued.last_error
    assert rescued.power_state == "power on" and sim.agent_running()
    assert rescued.instance_info["hashed_rescue_password"] == "******"
    shadow = (sim.root / "etc" / "shadow").read_text().splitlines()
    [entry] = [line for line in shadow if line.startswith("rescue:")]
    assert sha256_crypt.verify(PASSWORD, entry.split(":")[1])
    assert "rescue:" in (sim.root / "etc" / "passwd").read_text()

    _verb(stack, node, "unrescue")
    back = _settled(bm, node, "active")
    assert back.last_error is None
    assert "hashed_rescue_password" not in back.instance_info
    _assert_in_instance(stack, node)
    assert PASSWORD not in _logs(stack)


def test_rescue_that_never_calls_back_times_out(stack, node) -> None:
    bm = stack["conn"].baremetal
    stack["node"].hold_agent = True
    try:
        started = time.monotonic()
        _verb(stack, node, "rescue", rescue_password=PASSWORD)
        failed = _wait_state(bm, node, "rescue failed")
    finally:
        stack["node"].hold_agent = False
    assert time.monotonic() - started >= CALLBACK_TIMEOUT
    assert "[conductor]rescue_callback_timeout" in failed.last_error
    assert "hashed_rescue_password" not in failed.instance_info
    _verb(stack, node, "unrescue")
    _settled(bm, node, "active")
    _assert_in_instance(stack, node)
