"""Drivers: entry points, composition per node, clear errors, and the fake interfaces."""

from __future__ import annotations

import types
from importlib import metadata

import pytest

from agent.api.controllers import drivers as drivers_controller
from agent.common import exception, interfaces, states
from agent.common.config import CONF
from agent.conductor import task_manager
from agent.conductor.drivers import base, driver_factory, fake, fake_hardware, noop
from agent.db import api as db_api
from agent.db import models


@pytest.fixture(autouse=True)
def fresh_factory():
    """Each test loads drivers from its own options; overrides are undone afterwards."""
    driver_factory.reset()
    yield
    CONF.clear_override("default_inspect_interface", group="conductor")
    CONF.clear_override("enabled_power_interfaces", group="conductor")
    CONF.clear_override("enabled_inspect_interfaces", group="conductor")
    CONF.clear_override("enabled_hardware_types", group="conductor")
    driver_factory.reset()


def test_entry_points_are_installed() -> None:
    groups = {
        "kiln.hardware_types": {"fake-hardware"},
        "kiln.hardware.interfaces.boot": {"fake"},
        "kiln.hardware.interfaces.deploy": {"fake"},
        "kiln.hardware.interfaces.inspect": {"fake", "no-inspect"},
        "kiln.hardware.interfaces.management": {"fake"},
        "kiln.hardware.interfaces.network": {"noop"},
        "kiln.hardware.interfaces.power": {"fake"},
        "kiln.hardware.interfaces.bios": {"no-bios", "redfish"},
        "kiln.hardware.interfaces.firmware": {"no-firmware", "redfish"},
        "kiln.hardware.interfaces.raid": {"agent", "no-raid", "redfish"},
    }
    for group, names in groups.items():
        assert {ep.name for ep in metadata.entry_points(group=group)} >= names, group


def test_defaults_compose_fake_hardware() -> None:
    driver = driver_factory.build_driver_for_node({"uuid": "n1", "driver": "fake-hardware"})
    assert driver.interface_names == {
        "bios": "no-bios",
        "firmware": "no-firmware",
        "raid": "no-raid",
        "boot": "fake",
        "deploy": "fake",
        "inspect": "fake",
        "management": "fake",
        "network": "noop",
        "power": "fake",
    }
    assert isinstance(driver.hardware_type, fake_hardware.FakeHardware)
    assert isinstance(driver.power, fake.FakePower)
    assert isinstance(driver.network, noop.NoopNetwork)
    for interface_type in base.INTERFACE_TYPES:
        assert getattr(driver, interface_type).interface_type == interface_type


def test_interface_names_have_one_source() -> None:
    assert base.INTERFACE_TYPES == (
        "bios",
        "boot",
        "deploy",
        "firmware",
        "inspect",
        "management",
        "network",
        "power",
        "raid",
    )
    assert tuple(sorted(base.INTERFACE_CLASSES)) == base.INTERFACE_TYPES
    # firmware_interface (1.86) is a node field of its own, outside Ironic's older interface list
    assert set(base.INTERFACE_TYPES) - {"firmware"} < set(interfaces.VALIDATED_INTERFACES)
    assert set(interfaces.VALIDATED_INTERFACES) < set(interfaces.NODE_INTERFACES)
    assert set(interfaces.NODE_INTERFACES) - set(interfaces.VALIDATED_INTERFACES) == {"vendor"}
    for name in interfaces.NODE_INTERFACES:
        assert f"{name}_interface" in models.Node.__table__.columns, name
        assert f"enabled_{name}_interfaces" in drivers_controller.DRIVER_FIELDS, name
    for name in base.INTERFACE_TYPES:
        assert CONF.conductor[f"enabled_{name}_interfaces"], name


def test_boot_mode_check_names_node_and_modes() -> None:
    node = types.SimpleNamespace(uuid="node-7")
    assert base.check_boot_mode(node, "uefi") is None
    with pytest.raises(exception.InvalidParameterValue) as raised:
        base.check_boot_mode(node, "efi")
    assert str(raised.value) == 'Node node-7: boot mode "efi" is not one of bios, uefi.'
    with pytest.raises(exception.InvalidParameterValue, match="is not one of uefi, bios"):
        base.check_boot_mode(node, "bios-ish", ("uefi", "bios"))


def test_poll_power_state_returns_the_last_state_read() -> None:
    reads = iter([states.POWER_OFF, states.POWER_OFF, states.POWER_ON])
    assert base.poll_power_state(lambda: next(reads), states.POWER_ON, 60, 0) == (True, states.POWER_ON)
    seen: list[str] = []

    def stuck() -> str:
        seen.append(states.POWER_OFF)
        return states.POWER_OFF

    assert base.poll_power_state(stuck, states.POWER_ON, 0, 0) == (False, states.POWER_OFF)
    assert seen == [states.POWER_OFF]


def test_interfaces_are_shared_between_nodes() -> None:
    a = driver_factory.build_driver_for_node({"uuid": "a", "driver": "fake-hardware"})
    b = driver_factory.build_driver_for_node({"uuid": "b", "driver": "fake-hardware"})
    assert a.power is b.power


def test_node_choice_beats_default() -> None:
    names = driver_factory.check_and_update_node_interfaces(
        {"uuid": "n1", "driver": "fake-hardware", "inspect_interface": "no-inspect"}
    )
    assert names["inspect_interface"] == "no-inspect"
    assert names["power_interface"] == "fake"


def test_configured_default_is_used() -> None:
    CONF.set_override("default_inspect_interface", "no-inspect", group="conductor")
    names = driver_factory.check_and_update_node_interfaces({"uuid": "n1", "driver": "fake-hardware"})
    assert names["inspect_interface"] == "no-inspect"


def test_bad_configured_default_names_option_and_choices() -> None:
    CONF.set_override("enabled_inspect_interfaces", ["fake"], group="conductor")
    CONF.set_override("default_inspect_interface", "no-inspect", group="conductor")
    with pytest.raises(exception.InvalidParameterValue) as info:
        driver_factory.check_and_update_node_interfaces({"uuid": "n1", "driver": "fake-hardware"})
    message = str(info.value)
    assert "default_inspect_interface=no-inspect" in message
    assert "valid choices: fake" in message
    assert "n1" in message


def test_unknown_hardware_type_names_node_and_enabled() -> None:
    with pytest.raises(exception.DriverNotFound) as info:
        driver_factory.check_and_update_node_interfaces({"uuid": "n9", "driver": "idrac"})
    message = str(info.value)
    assert 'hardware type "idrac"' in message
    assert "n9" in message
    assert "enabled: fake-hardware" in message


def test_missing_driver_is_reported() -> None:
    with pytest.raises(exception.MissingParameterValue, match="driver"):
        driver_factory.check_and_update_node_interfaces({"uuid": "n1"})


def test_interface_not_enabled_names_field_and_choices() -> None:
    with pytest.raises(exception.InterfaceNotFoundInEntrypoint) as info:
        driver_factory.check_and_update_node_interfaces(
            {"uuid": "n3", "driver": "fake-hardware", "power_interface": "ipmitool"}
        )
    message = str(info.value)
    assert 'power_interface "ipmitool"' in message
    assert "n3" in message
    assert "valid choices" in message and "fake" in message


class NarrowHardware(fake_hardware.FakeHardware):
    """A hardware type that cannot use no-inspect."""

    @property
    def supported_inspect_interfaces(self) -> list[str]:
        """Fake inspection only."""
        return ["fake"]


def test_interface_unsupported_by_hardware_type(monkeypatch) -> None:
    enabled = tuple(CONF.conductor.enabled_hardware_types)
    monkeypatch.setattr(driver_factory, "_hardware_types", (enabled, {"narrow": NarrowHardware()}))
    with pytest.raises(exception.InvalidParameterValue) as info:
        driver_factory.check_and_update_node_interfaces(
            {"uuid": "n4", "driver": "narrow", "inspect_interface": "no-inspect"}
        )
    message = str(info.value)
    assert 'inspect_interface "no-inspect" is not supported by hardware type "narrow"' in message
    assert "valid choices: fake" in message


def test_no_usable_interface_is_reported() -> None:
    CONF.set_override("enabled_inspect_interfaces", [], group="conductor")
    with pytest.raises(exception.InvalidParameterValue, match="no inspect interface"):
        driver_factory.check_and_update_node_interfaces({"uuid": "n1", "driver": "fake-hardware"})


def test_enabled_but_not_installed() -> None:
    CONF.set_override("enabled_power_interfaces", ["fake", "ipmitool"], group="conductor")
    with pytest.raises(exception.DriverNotFound, match="not installed: ipmitool"):
        driver_factory.interfaces("power")


def test_changed_enabled_list_is_reloaded() -> None:
    """A changed [conductor] list is honoured, not served from what the old list loaded."""
    CONF.set_override("enabled_deploy_interfaces", ["fake"], group="conductor")
    assert set(driver_factory.interfaces("deploy")) == {"fake"}
    CONF.set_override("enabled_deploy_interfaces", ["fake", "direct"], group="conductor")
    assert set(driver_factory.interfaces("deploy")) == {"fake", "direct"}


def test_unknown_interface_type() -> None:
    with pytest.raises(exception.InvalidParameterValue, match='"console"'):
        driver_factory.interfaces("console")


def test_supported_interfaces_by_name() -> None:
    hw = fake_hardware.FakeHardware()
    assert hw.supported_interfaces("inspect") == ["fake", "agent", "no-inspect"]
    assert hw.supported_interfaces("bios") == ["no-bios"]
    assert hw.supported_interfaces("raid") == ["no-raid", "agent"]
    with pytest.raises(ValueError, match='"rescue"'):
        hw.supported_interfaces("rescue")


def test_interfaces_must_implement_their_contract() -> None:
    class HalfPower(base.PowerInterface):
        def validate(self, task) -> None:
            """Nothing."""

    with pytest.raises(TypeError, match="get_power_state"):
        HalfPower()


class StepDeploy(fake.FakeDeploy):
    """A deploy interface with one deploy step."""

    @base.deploy_step(priority=50, argsinfo={"size": {"required": True}})
    def write_image(self, task, size: int = 0) -> str:
        """Pretend to write ``size`` bytes."""
        return f"wrote {size}"


def test_deploy_steps() -> None:
    deploy = StepDeploy()
    assert deploy.get_deploy_steps(None) == [
        {
            "step": "write_image",
            "priority": 50,
            "argsinfo": {"size": {"required": True}},
            "interface": "deploy",
        }
    ]
    assert deploy.execute_deploy_step(None, {"step": "write_image", "args": {"size": 7}}) == "wrote 7"
    with pytest.raises(NotImplementedError, match='"tear_down"'):
        deploy.execute_deploy_step(None, {"step": "tear_down"})
    assert fake.FakeDeploy().get_deploy_steps(None) == []


def test_fake_interfaces_on_a_node(db) -> None:
    node = db_api.create_node({"driver": "fake-hardware"})
    with task_manager.acquire({}, node.uuid, host="cond-a", retry_attempts=1) as task:
        driver = task.driver
        assert driver.management.get_boot_device(task) == {"boot_device": None, "persistent": None}
        driver.management.set_boot_device(task, base.PXE, persistent=True)
        assert driver.management.get_boot_device(task) == {"boot_device": "pxe", "persistent": True}
        with pytest.raises(exception.InvalidParameterValue, match='boot device "cdrom"'):
            driver.management.set_boot_device(task, base.CDROM)
        driver.management.set_boot_mode(task, "uefi")
        assert driver.management.get_boot_mode(task) == "uefi"
        driver.power.reboot(task)
        assert driver.power.get_power_state(task) == states.POWER_ON
        driver.power.set_power_state(task, states.SOFT_POWER_OFF)
        assert driver.power.get_power_state(task) == states.POWER_OFF
        assert driver.deploy.deploy(task) is None
        assert driver.deploy.tear_down(task) == states.DELETED
        assert driver.inspect.inspect_hardware(task) is None
        with pytest.raises(exception.InvalidParameterValue, match="no-inspect"):
            noop.NoInspect().inspect_hardware(task)
    stored = db_api.get_node(node.uuid).driver_internal_info
    assert stored["fake_boot_device"] == {"boot_device": "pxe", "persistent": True}
    assert stored["fake_power_state"] == "power off"
