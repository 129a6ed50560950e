"""Rescue and unrescue: the agent ramdisk with a rescue password (only its hash kept), and back."""

from __future__ import annotations

import datetime
import logging

import oslo_messaging as messaging
import pytest
from oslo_config import cfg
from passlib.hash import sha256_crypt, sha512_crypt

from agent.common import exception, states
from agent.conductor import agent_commands, rescue, timeouts
from agent.conductor.drivers import fake as fake_drivers
from agent.db import api as db_api
from agent.node.steps import rescue as agent_rescue
from agent.node.steps.errors import StepError
from tests.unit.conductor.deploy_stack import Stack

CONF = cfg.CONF
PASSWORD = "Sup3r-rescue!"  # noqa: S105 - a test password


@pytest.fixture
def stack(tmp_path):
    """The in-process stack; its node is active and booting from disk; the agent's root is a tmp tree."""
    s = Stack(tmp_path)
    root = tmp_path / "agent-root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    CONF.set_override("root", str(root), group="agent")
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
    s.root = root
    yield s
    s.close()
    CONF.clear_override("root", group="agent")
    for name in ("rescue_callback_timeout", "rescue_password_hash_algorithm"):
        CONF.clear_override(name, group="conductor")


def _shadow_entry(stack) -> list[str]:
    lines = (stack.root / "etc" / "shadow").read_text().splitlines()
    return [line.split(":") for line in lines if line.startswith("rescue:")]


def _rescue(stack, password: str = PASSWORD) -> None:
    stack.manager.change_provision_state({}, stack.node.uuid, "rescue", rescue_password=password)


def test_rescue_sets_the_password_hash_in_the_ramdisk_then_unrescue(stack, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    _rescue(stack)
    node = stack.wait_state(states.RESCUEWAIT)
    hashed = node.instance_info[rescue.HASH_KEY]
    assert hashed.startswith("$5$") and sha256_crypt.verify(PASSWORD, hashed)
    assert PASSWORD not in repr(node.instance_info) and PASSWORD not in repr(node.driver_internal_info)
    assert node.driver_internal_info[fake_drivers.BOOT_DEVICE_KEY]["boot_device"] == "pxe"
    stack.boot_agent()
    node = stack.drive(states.RESCUE, states.RESCUEFAIL)
    assert node.provision_state == states.RESCUE, node.last_error
    assert node.target_provision_state is None and node.last_error is None
    assert node.power_state == states.POWER_ON  # the rescue ramdisk keeps running
    [entry] = _shadow_entry(stack)
    assert entry[1] == hashed and sha256_crypt.verify(PASSWORD, entry[1])
    assert (stack.root / "etc" / "shadow").read_text().startswith("root:*:")  # other users kept
    assert any(
        line.startswith("rescue:x:1000:") for line in (stack.root / "etc" / "passwd").read_text().splitlines()
    )
    assert agent_commands.COMMAND_KEY not in node.driver_internal_info

    stack.manager.change_provision_state({}, stack.node.uuid, "unrescue")
    node = stack.wait_state(states.ACTIVE)
    assert node.last_error is None
    assert node.power_state == states.POWER_ON
    assert node.driver_internal_info[fake_drivers.BOOT_DEVICE_KEY] == {
        "boot_device": "disk",
        "persistent": True,
    }
    assert rescue.HASH_KEY not in node.instance_info
    assert node.instance_info["image_source"]  # the rest of instance_info stays
    assert PASSWORD not in caplog.text  # never logged, by the conductor or the agent


def test_sha512_when_configured(stack) -> None:
    CONF.set_override("rescue_password_hash_algorithm", "sha512", group="conductor")
    _rescue(stack)
    hashed = stack.wait_state(states.RESCUEWAIT).instance_info[rescue.HASH_KEY]
    assert hashed.startswith("$6$") and sha512_crypt.verify(PASSWORD, hashed)


def test_rescue_that_never_calls_back_times_out(stack) -> None:
    CONF.set_override("rescue_callback_timeout", 30, group="conductor")
    _rescue(stack)
    stack.wait_state(states.RESCUEWAIT)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=31)
    assert timeouts.check_callback_timeouts(now=later) == [stack.node.uuid]
    node = stack.node_now()
    assert node.provision_state == states.RESCUEFAIL
    assert "[conductor]rescue_callback_timeout" in node.last_error
    assert node.power_state == states.POWER_OFF
    assert rescue.HASH_KEY not in node.instance_info
    # From "rescue failed", unrescue boots the instance again.
    stack.manager.change_provision_state({}, stack.node.uuid, "unrescue")
    node = stack.wait_state(states.ACTIVE)
    assert node.power_state == states.POWER_ON and node.last_error is None


def test_abort_in_rescue_wait_fails_the_rescue(stack) -> None:
    _rescue(stack)
    stack.wait_state(states.RESCUEWAIT)
    stack.manager.change_provision_state({}, stack.node.uuid, "abort")
    node = stack.wait_state(states.RESCUEFAIL)
    assert (
        "Rescue of node" in node.last_error and "aborted by request in state rescue wait" in node.last_error
    )
    assert node.power_state == states.POWER_OFF
    assert rescue.HASH_KEY not in node.instance_info


def test_agent_refusing_the_hash_fails_the_rescue(stack) -> None:
    _rescue(stack)
    stack.wait_state(states.RESCUEWAIT)
    info = dict(stack.node_now().instance_info)
    info[rescue.HASH_KEY] = "$1$not-sha-crypt"
    db_api.update_node(stack.node.uuid, {"instance_info": info})
    stack.boot_agent()
    node = stack.drive(states.RESCUEFAIL, states.RESCUE)
    assert node.provision_state == states.RESCUEFAIL
    assert "finalize_rescue" in node.last_error and "$5$ or $6$" in node.last_error
    assert _shadow_entry(stack) == []


def _refused(stack, verb: str, **kwargs) -> exception.KilnException:
    with pytest.raises(messaging.ExpectedException) as err:
        stack.manager.change_provision_state({}, stack.node.uuid, verb, **kwargs)
    return err.value.exc_info[1]


def test_rescue_needs_a_password_and_an_agent_deploy_interface(stack) -> None:
    assert isinstance(_refused(stack, "rescue", rescue_password=""), exception.MissingParameterValue)
    db_api.update_node(stack.node.uuid, {"deploy_interface": "fake"})
    error = _refused(stack, "rescue", rescue_password=PASSWORD)
    assert "cannot boot the agent ramdisk" in str(error)
    node = stack.node_now()
    assert node.provision_state == states.ACTIVE
    assert rescue.HASH_KEY not in node.instance_info
    assert isinstance(_refused(stack, "unrescue"), exception.InvalidStateRequested)


def test_agent_step_writes_shadow_atomically_and_refuses_garbage(tmp_path) -> None:
    hashed = sha512_crypt.using(rounds=5000).hash("x")
    path = agent_rescue.set_shadow_hash(str(tmp_path), hashed)  # no etc/ yet: both files made
    assert (tmp_path / "etc" / "shadow").stat().st_mode & 0o777 == 0o600
    assert open(path).read().startswith(f"rescue:{hashed}:")
    again = sha512_crypt.using(rounds=5000).hash("y")
    agent_rescue.set_shadow_hash(str(tmp_path), again)
    lines = (tmp_path / "etc" / "shadow").read_text().splitlines()
    assert len(lines) == 1 and lines[0].split(":")[1] == again
    assert (tmp_path / "etc" / "passwd").read_text().count("rescue:") == 1
    for bad in (
        None,
        "plain-password",
        "$6$salt$short",
        hashed + ":0:0",
        hashed + "\n",
        hashed + "\nroot::0",
    ):
        with pytest.raises(StepError):
            agent_rescue.set_shadow_hash(str(tmp_path), bad)
