"""Driver interfaces: one narrow contract per concern, as in Ironic's composable drivers.

Every method takes the task (``agent.conductor.task_manager.TaskManager``) so an implementation
reads ``task.node`` and persists through ``task.update_node``; an interface instance holds no
per-node state and is shared by all tasks.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Iterable
from typing import Any

from agent.common import exception, interfaces, raid, states

# Boot devices (Ironic's names), as get/set_boot_device take them.
PXE = "pxe"
DISK = "disk"
CDROM = "cdrom"
BIOS = "bios"
SAFE = "safe"
UEFIHTTP = "uefihttp"
BOOT_DEVICES = (PXE, DISK, CDROM, BIOS, SAFE, UEFIHTTP)

# Boot modes.
BOOT_MODE_BIOS = "bios"
BOOT_MODE_UEFI = "uefi"
BOOT_MODES = (BOOT_MODE_BIOS, BOOT_MODE_UEFI)


def check_boot_mode(node: Any, mode: str, modes: Iterable[str] = BOOT_MODES) -> None:
    """Raise InvalidParameterValue naming the node unless ``mode`` is one of ``modes``."""
    modes = tuple(modes)
    if mode not in modes:
        raise exception.InvalidParameterValue(
            err=f'Node {node.uuid}: boot mode "{mode}" is not one of {", ".join(modes)}.'
        )


def record_boot_mode(task, mode: str) -> None:
    """Keep the node's boot mode in driver_internal_info["boot_mode"] (the API shows it there)."""
    info = dict(task.node.driver_internal_info or {})
    info["boot_mode"] = mode
    task.update_node({"driver_internal_info": info})


def poll_power_state(
    read: Callable[[], str], wanted: str, timeout: float, interval: float
) -> tuple[bool, str]:
    """Call ``read`` until it returns ``wanted`` or ``timeout`` s passed; (reached, the last state read)."""
    deadline = time.monotonic() + timeout
    while True:
        current = read()
        if current == wanted:
            return True, current
        if time.monotonic() >= deadline:
            return False, current
        time.sleep(interval)


def deploy_step(priority: int, argsinfo: dict[str, Any] | None = None):
    """Mark an interface method as a deploy step run at ``priority`` (0: only when asked for)."""

    def mark(func):
        func._is_deploy_step = True
        func._deploy_step_priority = priority
        func._deploy_step_argsinfo = argsinfo or {}
        return func

    return mark


def clean_step(priority: int = 0, argsinfo: dict[str, Any] | None = None, requires_ramdisk: bool = False):
    """Mark an interface method as a clean step the conductor runs itself (0: only when asked for)."""

    def mark(func):
        func._is_clean_step = True
        func._clean_step_priority = priority
        func._clean_step_argsinfo = argsinfo or {}
        func._clean_step_requires_ramdisk = requires_ramdisk
        return func

    return mark


class BaseInterface(abc.ABC):
    """What every interface has: a type name, its properties and a validate()."""

    interface_type: str = "base"

    def get_properties(self) -> dict[str, str]:
        """Return the driver_info keys this interface reads, with a description of each."""
        return {}

    @abc.abstractmethod
    def validate(self, task) -> None:
        """Check the node's driver_info for this interface; raise InvalidParameterValue if unusable."""


class PowerInterface(BaseInterface):
    """Reads and changes a node's power state."""

    interface_type = "power"

    @abc.abstractmethod
    def get_power_state(self, task) -> str:
        """Return the node's current power state (states.POWER_ON / POWER_OFF, or states.ERROR)."""

    @abc.abstractmethod
    def set_power_state(self, task, power_state: str, timeout: int | None = None) -> None:
        """Put the node into ``power_state``; raise PowerStateFailure when it does not get there."""

    @abc.abstractmethod
    def reboot(self, task, timeout: int | None = None) -> None:
        """Power the node off and on again, ending powered on."""

    def get_supported_power_states(self, task) -> list[str]:
        """Return the power states set_power_state accepts."""
        return [states.POWER_ON, states.POWER_OFF, states.REBOOT]


class ManagementInterface(BaseInterface):
    """Boot device and boot mode of a node."""

    interface_type = "management"

    def get_node_health(self, task) -> str | None:
        """The hardware health the BMC reports ("OK", "Warning", "Critical"), or None when it reports none."""
        return None

    @abc.abstractmethod
    def get_supported_boot_devices(self, task) -> list[str]:
        """Return the boot devices set_boot_device accepts."""

    @abc.abstractmethod
    def set_boot_device(self, task, device: str, persistent: bool = False) -> None:
        """Boot the node from ``device`` next time (every time when ``persistent``)."""

    @abc.abstractmethod
    def get_boot_device(self, task) -> dict[str, Any]:
        """Return {"boot_device": device or None, "persistent": bool or None}."""

    def get_supported_boot_modes(self, task) -> list[str]:
        """Return the boot modes set_boot_mode accepts; empty when it cannot change them."""
        return []

    def set_boot_mode(self, task, mode: str) -> None:
        """Switch the node's firmware to boot ``mode``; unsupported unless overridden."""
        raise NotImplementedError(f"{type(self).__name__} cannot set the boot mode")

    def get_boot_mode(self, task) -> str | None:
        """Return the node's current boot mode, or None when unknown."""
        return None

    def attach_virtual_media(self, task, device_type: str, image_url: str, download_source: str) -> None:
        """Insert ``image_url`` into the BMC's virtual ``device_type``; unsupported unless overridden."""
        raise exception.InvalidParameterValue(
            err=f"Node {task.node.uuid}: management interface {task.node.management_interface} "
            "cannot attach virtual media; use a redfish node."
        )

    def detach_virtual_media(self, task, device_types: list[str] | None) -> None:
        """Eject the virtual media of ``device_types`` (all when None); unsupported unless overridden."""
        raise exception.InvalidParameterValue(
            err=f"Node {task.node.uuid}: management interface {task.node.management_interface} "
            "cannot detach virtual media; use a redfish node."
        )


class BootInterface(BaseInterface):
    """How a node boots: the deploy ramdisk, then the instance."""

    interface_type = "boot"
    #: The device the node boots the agent ramdisk from once prepare_ramdisk has run.
    ramdisk_boot_device = PXE

    @abc.abstractmethod
    def prepare_ramdisk(self, task, ramdisk_params: dict[str, Any]) -> None:
        """Make the node boot the agent ramdisk with ``ramdisk_params`` on its kernel command line."""

    @abc.abstractmethod
    def clean_up_ramdisk(self, task) -> None:
        """Undo prepare_ramdisk."""

    @abc.abstractmethod
    def prepare_instance(self, task) -> None:
        """Make the node boot the deployed instance."""

    @abc.abstractmethod
    def clean_up_instance(self, task) -> None:
        """Undo prepare_instance."""


#: Provision states in which a node boots its instance: taking it over prepares the instance's boot.
TAKEOVER_INSTANCE_STATES = frozenset((states.ACTIVE, states.ADOPTING))
#: Every provision state whose boot files a conductor that takes the node over writes again.
TAKEOVER_STATES = TAKEOVER_INSTANCE_STATES | states.AGENT_WAIT_STATES


class DeployInterface(BaseInterface):
    """Puts an image on a node and takes it off again."""

    interface_type = "deploy"

    @abc.abstractmethod
    def deploy(self, task) -> str | None:
        """Start the deployment; return states.DEPLOYWAIT when it continues asynchronously, else None."""

    @abc.abstractmethod
    def tear_down(self, task) -> str:
        """Tear the instance down; return states.DELETED when done (or DELETING/wait to continue)."""

    @abc.abstractmethod
    def prepare(self, task) -> None:
        """Prepare the environment (networks, boot) before deploy()."""

    @abc.abstractmethod
    def clean_up(self, task) -> None:
        """Remove what prepare() and deploy() left behind."""

    def take_over(self, task) -> None:
        """Take over a node another conductor was managing: write its boot files in this conductor's paths.

        As Ironic does: a deployed (or adopted) node gets its instance boot prepared again, a node
        waiting for its agent gets its ramdisk boot files again; other states need nothing. The dead
        conductor's files sit on its own host, out of reach, so nothing is removed here.
        """
        from agent.conductor import agent_boot, cleaning, servicing  # they import this module

        node = task.node
        if node.provision_state in TAKEOVER_INSTANCE_STATES or servicing.without_agent(node):
            task.driver.boot.prepare_instance(task)  # servicing without the agent: the instance boots
        elif node.provision_state == states.CLEANWAIT and (node.driver_internal_info or {}).get(
            cleaning.NO_RAMDISK_KEY
        ):
            return  # cleaning without the agent: nothing boots from the network
        elif node.provision_state in states.AGENT_WAIT_STATES:
            task.driver.boot.prepare_ramdisk(task, agent_boot.ramdisk_params(task))

    def heartbeat(self, task, status: dict[str, Any]) -> None:
        """React to an agent heartbeat while the node waits for its agent (no-op by default)."""

    def step_result(self, task, step: str, result: dict[str, Any]) -> None:
        """React to the result of a step the agent ran (no-op by default)."""

    def get_deploy_steps(self, task) -> list[dict[str, Any]]:
        """Return the deploy steps this interface offers: [{"step", "priority", "argsinfo", "interface"}]."""
        steps = []
        for name in sorted(dir(type(self))):
            method = getattr(type(self), name, None)
            if callable(method) and getattr(method, "_is_deploy_step", False):
                steps.append(
                    {
                        "step": name,
                        "priority": method._deploy_step_priority,
                        "argsinfo": method._deploy_step_argsinfo,
                        "interface": self.interface_type,
                    }
                )
        return steps

    def execute_deploy_step(self, task, step: dict[str, Any]) -> str | None:
        """Run one step from get_deploy_steps; return a wait state to continue asynchronously."""
        name = step.get("step")
        method = getattr(self, name, None) if name else None
        if method is None or not getattr(method, "_is_deploy_step", False):
            raise NotImplementedError(f'{type(self).__name__} has no deploy step "{name}"')
        return method(task, **(step.get("args") or {}))


class NetworkInterface(BaseInterface):
    """Wires a node's ports to the provisioning and tenant networks."""

    interface_type = "network"

    @abc.abstractmethod
    def add_provisioning_network(self, task) -> None:
        """Attach the node's ports to the provisioning network."""

    @abc.abstractmethod
    def remove_provisioning_network(self, task) -> None:
        """Detach the node's ports from the provisioning network."""

    @abc.abstractmethod
    def configure_tenant_networks(self, task) -> None:
        """Attach the node's ports to its tenant networks."""

    @abc.abstractmethod
    def unconfigure_tenant_networks(self, task) -> None:
        """Detach the node's ports from its tenant networks."""

    def add_cleaning_network(self, task) -> None:
        """Attach the node's ports to the cleaning network (default: nothing to do)."""

    def remove_cleaning_network(self, task) -> None:
        """Detach the node's ports from the cleaning network (default: nothing to do)."""

    def add_rescuing_network(self, task) -> None:
        """Attach the node's ports to the rescuing network (default: the cleaning one)."""
        self.add_cleaning_network(task)

    def remove_rescuing_network(self, task) -> None:
        """Detach the node's ports from the rescuing network (default: the cleaning one)."""
        self.remove_cleaning_network(task)

    def add_inspection_network(self, task) -> None:
        """Attach the node's ports to the inspection network (default: the provisioning one)."""
        self.add_provisioning_network(task)

    def remove_inspection_network(self, task) -> None:
        """Detach the node's ports from the inspection network (default: the provisioning one)."""
        self.remove_provisioning_network(task)

    #: Whether VIFs are checked and recorded on the node's ports (Ironic's noop keeps none).
    records_vifs = True

    #: Whether VIF ids name networks declared in Kiln's config ([network:NAME]), whose owner
    #: and lessee rules then apply; the neutron interface's VIFs are Neutron ports instead.
    declared_vifs = True

    def vif_network(self, task, vif: str, ctxt: dict) -> Any:
        """The network VIF ``vif`` puts the node on, once the caller of ``ctxt`` may attach it (declared)."""
        from agent.conductor.drivers.network import declared

        network = declared.get_network(vif)
        declared.check_attach(task.node, network, ctxt)
        return network

    def vif_attached(self, task, kind: str, obj: Any, network: Any) -> None:
        """A VIF was recorded on port or portgroup ``obj`` (default: nothing to rewire)."""

    def vif_detached(self, task, kind: str, obj: Any) -> None:
        """A VIF is being removed from ``obj`` (default: nothing to rewire)."""


class InspectInterface(BaseInterface):
    """Discovers a node's hardware properties."""

    interface_type = "inspect"

    @abc.abstractmethod
    def inspect_hardware(self, task) -> str | None:
        """Inspect the node; return states.INSPECTWAIT to finish asynchronously, else None when done."""

    def inventory_received(self, task, inventory: dict[str, Any]) -> None:
        """React to an inventory the agent reported while the node is in "inspect wait" (no-op by default)."""


class ConductorStepsInterface(BaseInterface):
    """An interface whose clean steps run in the conductor (marked with ``clean_step``)."""

    def get_clean_steps(self, task) -> list[dict[str, Any]]:
        """The clean steps this implementation offers, in Ironic's form."""
        steps = []
        for name in sorted(dir(type(self))):
            method = getattr(type(self), name, None)
            if callable(method) and getattr(method, "_is_clean_step", False):
                steps.append(
                    {
                        "step": name,
                        "priority": method._clean_step_priority,
                        "argsinfo": method._clean_step_argsinfo,
                        "interface": self.interface_type,
                        "abortable": False,
                        "requires_ramdisk": method._clean_step_requires_ramdisk,
                    }
                )
        return steps

    def execute_clean_step(self, task, step: dict[str, Any]) -> None:
        """Run one of get_clean_steps with the step's args."""
        name = step.get("step")
        method = getattr(self, name, None) if name else None
        if method is None or not getattr(method, "_is_clean_step", False):
            raise exception.InvalidParameterValue(
                err=f"Node {task.node.uuid}: {self.interface_type} interface {type(self).__name__} "
                f'has no clean step "{name}".'
            )
        method(task, **(step.get("args") or {}))


class BiosInterface(ConductorStepsInterface):
    """BIOS settings: read them into the node's cache, apply new values, reset to factory defaults."""

    interface_type = "bios"

    @abc.abstractmethod
    def cache_bios_settings(self, task) -> None:
        """Read the BMC's BIOS settings and store them as the node's (agent.db.bios)."""


class FirmwareInterface(ConductorStepsInterface):
    """Firmware components: read their versions into the node's cache, update them."""

    interface_type = "firmware"

    @abc.abstractmethod
    def cache_firmware_components(self, task) -> None:
        """Read the BMC's firmware versions and store them as the node's (agent.db.firmware)."""


class RAIDInterface(ConductorStepsInterface):
    """RAID: validate a target configuration, build it and tear it down."""

    interface_type = "raid"

    def validate_raid_config(self, task, raid_config: dict[str, Any]) -> None:
        """Check ``raid_config`` against Ironic's RAID schema; InvalidParameterValue naming the problem."""
        raid.validate_configuration(task.node.uuid, raid_config)


INTERFACE_CLASSES: dict[str, type[BaseInterface]] = {
    cls.interface_type: cls
    for cls in (
        BiosInterface,
        BootInterface,
        DeployInterface,
        FirmwareInterface,
        RAIDInterface,
        InspectInterface,
        ManagementInterface,
        NetworkInterface,
        PowerInterface,
    )
}
"""The interface types a node composes, by name."""

INTERFACE_TYPES: tuple[str, ...] = interfaces.COMPOSED_INTERFACES
"""The same names, sorted; the list lives in agent.common so that config and db can use it too."""
