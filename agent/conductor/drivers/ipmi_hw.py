"""The ``ipmi`` hardware type: a BMC speaking IPMI 2.0 (pyghmi)."""

from __future__ import annotations

from agent.conductor.drivers import hardware_type


class IPMIHardware(hardware_type.AbstractHardwareType):
    """Power and management over IPMI; iPXE or PXE boot; direct deploy."""

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
        """IPMI boot device."""
        return ["ipmi", "fake"]

    @property
    def supported_power_interfaces(self) -> list[str]:
        """IPMI chassis power."""
        return ["ipmi", "fake"]

    @property
    def supported_network_interfaces(self) -> list[str]:
        """A flat provisioning network, or none."""
        return ["flat", "noop"]

    @property
    def supported_inspect_interfaces(self) -> list[str]:
        """Agent inspection when available, else none."""
        return ["agent", "fake", "no-inspect"]
