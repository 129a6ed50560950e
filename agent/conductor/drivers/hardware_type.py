"""Hardware types: which interface implementations a kind of machine can use, in preference order."""

from __future__ import annotations

import abc


class AbstractHardwareType(abc.ABC):
    """A kind of machine (a BMC protocol): lists the interfaces it supports, most preferred first.

    A node names a hardware type in ``driver`` and, per interface, one of the supported names;
    a node that names none gets the first supported name that the conductor has enabled.
    """

    @property
    @abc.abstractmethod
    def supported_boot_interfaces(self) -> list[str]:
        """Boot interface names this hardware type works with."""

    @property
    @abc.abstractmethod
    def supported_deploy_interfaces(self) -> list[str]:
        """Deploy interface names this hardware type works with."""

    @property
    @abc.abstractmethod
    def supported_management_interfaces(self) -> list[str]:
        """Management interface names this hardware type works with."""

    @property
    @abc.abstractmethod
    def supported_power_interfaces(self) -> list[str]:
        """Power interface names this hardware type works with."""

    @property
    def supported_network_interfaces(self) -> list[str]:
        """Network interface names this hardware type works with."""
        return ["noop"]

    @property
    def supported_inspect_interfaces(self) -> list[str]:
        """Inspect interface names this hardware type works with."""
        return ["no-inspect"]

    @property
    def supported_bios_interfaces(self) -> list[str]:
        """BIOS interface names this hardware type works with."""
        return ["no-bios"]

    @property
    def supported_firmware_interfaces(self) -> list[str]:
        """Firmware interface names this hardware type works with."""
        return ["no-firmware"]

    @property
    def supported_raid_interfaces(self) -> list[str]:
        """RAID interface names this hardware type works with."""
        return ["no-raid", "agent"]

    def supported_interfaces(self, interface_type: str) -> list[str]:
        """Supported names for ``interface_type`` ("power", "boot", ...)."""
        attr = f"supported_{interface_type}_interfaces"
        if not hasattr(self, attr):
            raise ValueError(f'{type(self).__name__} has no interface type "{interface_type}"')
        return list(getattr(self, attr))

    def get_properties(self) -> dict[str, str]:
        """Driver properties common to every interface of this type (none by default)."""
        return {}


class BMCHardwareType(AbstractHardwareType):
    """A machine run through its BMC: iPXE or PXE boot, direct deploy, a flat network, agent inspection.

    A subclass names its BMC protocol in ``bmc_interface``; that protocol's power and management
    implementations come first, fake second.
    """

    bmc_interface: str
    """The power and management implementation name of this BMC protocol ("ipmi", "redfish")."""

    @property
    def supported_boot_interfaces(self) -> list[str]:
        """iPXE first, then PXE, then fake."""
        return ["ipxe", "pxe", "fake"]

    @property
    def supported_deploy_interfaces(self) -> list[str]:
        """The agent's direct deploy, or fake."""
        return ["direct", "fake"]

    @property
    def supported_management_interfaces(self) -> list[str]:
        """Boot device (and mode, where the protocol has it) over the BMC protocol, or fake."""
        return [self.bmc_interface, "fake"]

    @property
    def supported_power_interfaces(self) -> list[str]:
        """Power over the BMC protocol, or fake."""
        return [self.bmc_interface, "fake"]

    @property
    def supported_network_interfaces(self) -> list[str]:
        """A flat provisioning network, none, per-tenant VLANs on the switch (multitenant), or Neutron."""
        return ["flat", "noop", "multitenant", "neutron"]

    @property
    def supported_inspect_interfaces(self) -> list[str]:
        """Agent inspection when available, else none."""
        return ["agent", "fake", "no-inspect"]
