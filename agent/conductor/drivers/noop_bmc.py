"""no-bios, no-firmware and no-raid (Ironic's names): a node without these capabilities, and the
``agent`` RAID interface, whose steps would run in the ramdisk (Kiln's agent builds no RAID)."""

from __future__ import annotations

from typing import Any

from agent.common import exception
from agent.conductor.drivers import base


def _unsupported(task, what: str) -> exception.UnsupportedDriverExtension:
    return exception.UnsupportedDriverExtension(driver=task.node.driver, extension=what)


class NoBIOS(base.BiosInterface):
    """No BIOS settings: nothing is cached and there are no BIOS clean steps."""

    def validate(self, task) -> None:
        """Fails as Ironic's no-bios does: the node has no BIOS interface."""
        raise _unsupported(task, "bios")

    def cache_bios_settings(self, task) -> None:
        """Refused: this node's bios_interface reads no settings."""
        raise _unsupported(task, "bios (the node's bios_interface is no-bios)")


class NoFirmware(base.FirmwareInterface):
    """No firmware components: nothing is cached and there is no firmware update step."""

    def validate(self, task) -> None:
        """Fails as Ironic's no-firmware does: the node has no firmware interface."""
        raise _unsupported(task, "firmware")

    def cache_firmware_components(self, task) -> None:
        """Refused: this node's firmware_interface reads no components."""
        raise _unsupported(task, "firmware (the node's firmware_interface is no-firmware)")


class NoRAID(base.RAIDInterface):
    """No RAID: a target RAID configuration is refused."""

    def validate(self, task) -> None:
        """Fails as Ironic's no-raid does: the node has no RAID interface."""
        raise _unsupported(task, "raid")

    def validate_raid_config(self, task, raid_config: dict[str, Any]) -> None:
        """Refused: set raid_interface to redfish (or agent) first."""
        raise _unsupported(task, "raid (the node's raid_interface is no-raid)")


_CREATE_ARGS = {
    "create_root_volume": {
        "description": "Create the root volume of target_raid_config (default true).",
        "required": False,
    },
    "create_nonroot_volumes": {
        "description": "Create the other volumes of target_raid_config (default true).",
        "required": False,
    },
    "delete_existing": {
        "description": "Delete the existing volumes first (default true for redfish, false for agent).",
        "required": False,
    },
}


class AgentRAID(base.RAIDInterface):
    """RAID built in the ramdisk, as Ironic's ``agent`` does; Kiln's agent has no RAID step, so its
    steps are listed but refuse to run, naming the interface that can build RAID (redfish)."""

    def validate(self, task) -> None:
        """Nothing to check before a step runs."""

    def _refuse(self, task, step: str) -> None:
        raise exception.InvalidParameterValue(
            err=f"Node {task.node.uuid}: raid.{step} cannot run: Kiln's agent does not build software or "
            "hardware RAID. Use raid_interface redfish on a BMC that offers Storage Volumes."
        )

    @base.clean_step(priority=0, argsinfo=_CREATE_ARGS, requires_ramdisk=True)
    def create_configuration(self, task, **_: Any) -> None:
        """Refused (see the class)."""
        self._refuse(task, "create_configuration")

    @base.clean_step(priority=0, requires_ramdisk=True)
    def delete_configuration(self, task) -> None:
        """Refused (see the class)."""
        self._refuse(task, "delete_configuration")
