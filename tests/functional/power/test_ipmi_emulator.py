"""IPMI power and management against pyghmi's BMC emulator (ipmi_bmc.py) on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from agent.common import exception, states
from agent.conductor.drivers import ipmi
from tests.functional.procs import free_port

PASSWORD = "ipmi-pw-77c1"
BMC = os.path.join(os.path.dirname(__file__), "ipmi_bmc.py")


def _start(*flags: str):
    port = free_port(socket.SOCK_DGRAM)
    proc = subprocess.Popen(
        [sys.executable, BMC, str(port), PASSWORD, *flags], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "listening\n"
    return proc, port


@pytest.fixture(scope="module")
def bmc():
    """An emulated BMC whose power changes apply at once; yields its UDP port."""
    proc, port = _start()
    try:
        yield port
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def node(make_node, bmc, fast_polls):
    info = {
        "ipmi_address": "127.0.0.1",
        "ipmi_port": bmc,
        "ipmi_username": "admin",
        "ipmi_password": PASSWORD,
    }
    return make_node(driver="ipmi", driver_info=info)


def test_power_on_off_reboot(node, acquire) -> None:
    with acquire(node) as task:
        assert isinstance(task.driver.power, ipmi.IPMIPower)
        power = task.driver.power
        power.set_power_state(task, states.POWER_ON, timeout=10)
        assert power.get_power_state(task) == states.POWER_ON
        power.set_power_state(task, states.POWER_OFF, timeout=10)
        assert power.get_power_state(task) == states.POWER_OFF
        power.reboot(task, timeout=10)
        assert power.get_power_state(task) == states.POWER_ON
        power.set_power_state(task, states.SOFT_POWER_OFF, timeout=10)
        assert power.get_power_state(task) == states.POWER_OFF


def test_boot_device_persistent_and_uefi_flags(node, acquire) -> None:
    with acquire(node) as task:
        management = task.driver.management
        management.set_boot_mode(task, "uefi")
        management.set_boot_device(task, "pxe", persistent=False)
        assert management.get_boot_device(task) == {"boot_device": "pxe", "persistent": False}
        management.set_boot_device(task, "disk", persistent=True)
        assert management.get_boot_device(task) == {"boot_device": "disk", "persistent": True}
        raw = ipmi._run(task.node, "read flags", "get_bootdev")
        assert raw["uefimode"] is True
        management.set_boot_mode(task, "bios")
        management.set_boot_device(task, "cdrom", persistent=False)
        raw = ipmi._run(task.node, "read flags", "get_bootdev")
        assert raw == {"bootdev": "optical", "persistent": False, "uefimode": False}
        assert management.get_boot_mode(task) == "bios"


def test_wrong_password_is_clear_and_masked(make_node, acquire, bmc) -> None:
    wrong = "not-the-pw-31"
    info = {"ipmi_address": "127.0.0.1", "ipmi_port": bmc, "ipmi_username": "admin", "ipmi_password": wrong}
    node = make_node(driver="ipmi", driver_info=info)
    with acquire(node) as task:
        with pytest.raises(ipmi.IPMIError) as err:
            task.driver.power.get_power_state(task)
    assert node in str(err.value) and f"127.0.0.1:{bmc}" in str(err.value)
    assert wrong not in str(err.value)


def test_bmc_that_never_changes_power_fails_with_power_state_failure(make_node, acquire, fast_polls) -> None:
    proc, port = _start("--stuck")
    try:
        info = {
            "ipmi_address": "127.0.0.1",
            "ipmi_port": port,
            "ipmi_username": "admin",
            "ipmi_password": PASSWORD,
        }
        node = make_node(driver="ipmi", driver_info=info)
        with acquire(node) as task:
            with pytest.raises(exception.PowerStateFailure) as err:
                task.driver.power.set_power_state(task, states.POWER_ON, timeout=1)
    finally:
        proc.kill()
        proc.wait()
    message = str(err.value)
    assert node in message and '"power on"' in message and '"power off"' in message


@pytest.fixture(scope="module")
def sha1_bmc():
    """A BMC that, as virtualbmc does, accepts a SHA-256 login proposal and answers it with SHA-1."""
    proc, port = _start("--sha1-anyway")
    try:
        yield port
    finally:
        proc.kill()
        proc.wait()


def test_cipher_suite_17_fails_clearly_and_3_logs_in(make_node, sha1_bmc, acquire, fast_polls) -> None:
    info = {
        "ipmi_address": "127.0.0.1",
        "ipmi_port": sha1_bmc,
        "ipmi_username": "admin",
        "ipmi_password": PASSWORD,
    }
    with acquire(make_node(driver="ipmi", driver_info=info)) as task:
        with pytest.raises(
            ipmi.IPMIError, match="answered the SHA-256 login .* set driver_info ipmi_cipher_suite=3"
        ):
            task.driver.power.get_power_state(task)
    with acquire(make_node(driver="ipmi", driver_info={**info, "ipmi_cipher_suite": "3"})) as task:
        task.driver.power.set_power_state(task, states.POWER_ON, timeout=10)
        assert task.driver.power.get_power_state(task) == states.POWER_ON
