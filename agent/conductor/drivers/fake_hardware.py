"""The fake-hardware hardware type: fake interfaces only, for tests and kiln-demo."""

from __future__ import annotations

from agent.conductor.drivers import hardware_type


class FakeHardware(hardware_type.AbstractHardwareType):
    """Every interface fake (network noop; inspect fake or no-inspect)."""

    @property
    def supported_boot_interfaces(self) -> list[str]:
        """Fake boot, or real boot files (PXE, iPXE) for a node whose power is simulated."""
        return ["fake", "pxe", "ipxe"]

    @property
    def supported_deploy_interfaces(self) -> list[str]:
        """Fake deploy, or the agent's direct deploy (simulated nodes)."""
        return ["fake", "direct"]

    @property
    def supported_management_interfaces(self) -> list[str]:
        """Fake management."""
        return ["fake"]

    @property
    def supported_power_interfaces(self) -> list[str]:
        """Fake power."""
        return ["fake"]

    @property
    def supported_network_interfaces(self) -> list[str]:
        """No network wiring, one flat network, switch ports moved per VLAN (multitenant) or by Neutron."""
        return ["noop", "flat", "multitenant", "neutron"]

    @property
    def supported_inspect_interfaces(self) -> list[str]:
        """Fake inspection, in-band inspection by the agent, or none."""
        return ["fake", "agent", "no-inspect"]
