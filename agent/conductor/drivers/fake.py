"""Fake interfaces: they touch no hardware and finish at once, for tests and kiln-demo."""

from __future__ import annotations

import time
from typing import Any

from agent.common import exception, states
from agent.common.config import CONF
from agent.conductor.drivers import base

POWER_KEY = "fake_power_state"
BOOT_DEVICE_KEY = "fake_boot_device"
BOOT_MODE_KEY = "fake_boot_mode"
VMEDIA_KEY = "fake_virtual_media"


def _bmc_delay() -> None:
    """Take [fake]power_delay seconds, as a real BMC takes for a power action."""
    if CONF.fake.power_delay:
        time.sleep(CONF.fake.power_delay)


def _remember(task, key: str, value: Any) -> None:
    info = dict(task.node.driver_internal_info or {})
    info[key] = value
    task.update_node({"driver_internal_info": info})


class FakePower(base.PowerInterface):
    """Power that is whatever it was last set to, kept in driver_internal_info."""

    def validate(self, task) -> None:
        """Nothing to check: the fake BMC needs no credentials."""

    def get_power_state(self, task) -> str:
        """The last state set, else the node's recorded power_state, else power off."""
        info = task.node.driver_internal_info or {}
        return info.get(POWER_KEY) or task.node.power_state or states.POWER_OFF

    def set_power_state(self, task, power_state: str, timeout: int | None = None) -> None:
        """Remember ``power_state`` (soft variants end in the hard state)."""
        wanted = {
            states.POWER_ON: states.POWER_ON,
            states.POWER_OFF: states.POWER_OFF,
            states.SOFT_POWER_OFF: states.POWER_OFF,
            states.REBOOT: states.POWER_ON,
            states.SOFT_REBOOT: states.POWER_ON,
        }.get(power_state)
        if wanted is None:
            raise exception.InvalidParameterValue(
                err=f'Node {task.node.uuid}: fake power cannot set power state "{power_state}"; '
                f"use one of {', '.join(self.get_supported_power_states(task))}."
            )
        _bmc_delay()
        _remember(task, POWER_KEY, wanted)

    def reboot(self, task, timeout: int | None = None) -> None:
        """A reboot ends powered on."""
        _bmc_delay()
        _remember(task, POWER_KEY, states.POWER_ON)

    def get_supported_power_states(self, task) -> list[str]:
        """Hard and soft on, off and reboot."""
        return [states.POWER_ON, states.POWER_OFF, states.REBOOT, states.SOFT_REBOOT, states.SOFT_POWER_OFF]


class FakeManagement(base.ManagementInterface):
    """Boot device and mode remembered in driver_internal_info."""

    def validate(self, task) -> None:
        """Nothing to check."""

    def get_supported_boot_devices(self, task) -> list[str]:
        """PXE and disk, as a minimal BMC offers."""
        return [base.PXE, base.DISK]

    def set_boot_device(self, task, device: str, persistent: bool = False) -> None:
        """Remember the device; reject one not in get_supported_boot_devices."""
        supported = self.get_supported_boot_devices(task)
        if device not in supported:
            raise exception.InvalidParameterValue(
                err=f'Node {task.node.uuid}: boot device "{device}" is not supported; '
                f"use one of {', '.join(supported)}."
            )
        _remember(task, BOOT_DEVICE_KEY, {"boot_device": device, "persistent": bool(persistent)})

    def get_boot_device(self, task) -> dict[str, Any]:
        """The last device set, or unknown."""
        info = task.node.driver_internal_info or {}
        return dict(info.get(BOOT_DEVICE_KEY) or {"boot_device": None, "persistent": None})

    def get_supported_boot_modes(self, task) -> list[str]:
        """Both BIOS and UEFI."""
        return list(base.BOOT_MODES)

    def set_boot_mode(self, task, mode: str) -> None:
        """Remember the boot mode."""
        base.check_boot_mode(task.node, mode)
        _remember(task, BOOT_MODE_KEY, mode)

    def get_boot_mode(self, task) -> str | None:
        """The last mode set, or None."""
        return (task.node.driver_internal_info or {}).get(BOOT_MODE_KEY)

    def attach_virtual_media(self, task, device_type: str, image_url: str, download_source: str) -> None:
        """Remember the inserted medium per device type."""
        media = dict((task.node.driver_internal_info or {}).get(VMEDIA_KEY) or {})
        media[device_type] = {"image_url": image_url, "image_download_source": download_source}
        _remember(task, VMEDIA_KEY, media)

    def detach_virtual_media(self, task, device_types: list[str] | None) -> None:
        """Forget the media of ``device_types`` (all when None)."""
        media = dict((task.node.driver_internal_info or {}).get(VMEDIA_KEY) or {})
        for kind in list(media) if device_types is None else device_types:
            media.pop(kind, None)
        _remember(task, VMEDIA_KEY, media)


class FakeBoot(base.BootInterface):
    """Boot preparation that does nothing."""

    def validate(self, task) -> None:
        """Nothing to check."""

    def prepare_ramdisk(self, task, ramdisk_params: dict[str, Any]) -> None:
        """Nothing to prepare."""

    def clean_up_ramdisk(self, task) -> None:
        """Nothing to clean up."""

    def prepare_instance(self, task) -> None:
        """Nothing to prepare."""

    def clean_up_instance(self, task) -> None:
        """Nothing to clean up."""


class FakeDeploy(base.DeployInterface):
    """A deployment that completes immediately and a tear down that does too."""

    def validate(self, task) -> None:
        """Nothing to check."""

    def deploy(self, task) -> str | None:
        """Done at once (the node's ports go to its tenant networks); the caller sends "done"."""
        task.driver.network.remove_provisioning_network(task)
        task.driver.network.configure_tenant_networks(task)
        return None

    def tear_down(self, task) -> str:
        """Done at once (the node's ports leave its tenant networks)."""
        task.driver.network.unconfigure_tenant_networks(task)
        return states.DELETED

    def prepare(self, task) -> None:
        """Put the node's ports on the provisioning network, as a real deployment does."""
        task.driver.network.unconfigure_tenant_networks(task)
        task.driver.network.add_provisioning_network(task)

    def clean_up(self, task) -> None:
        """Nothing to clean up."""


class FakeInspect(base.InspectInterface):
    """Inspection that finds nothing new and finishes at once."""

    def validate(self, task) -> None:
        """Nothing to check."""

    def inspect_hardware(self, task) -> str | None:
        """Done at once: the caller moves the node on with the "done" event."""
        return None
