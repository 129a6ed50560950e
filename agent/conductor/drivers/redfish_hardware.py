"""The ``redfish`` hardware type: a BMC speaking Redfish (sushy)."""

from __future__ import annotations

from agent.conductor.drivers import hardware_type


class RedfishHardware(hardware_type.BMCHardwareType):
    """Power and management (boot device and mode) over Redfish; iPXE, PXE or virtual media boot;
    direct deploy."""

    bmc_interface = "redfish"

    @property
    def supported_boot_interfaces(self) -> list[str]:
        """iPXE, PXE, then the ramdisk as an ISO in the BMC's virtual CD, then fake."""
        return ["ipxe", "pxe", "redfish-virtual-media", "fake"]

    @property
    def supported_bios_interfaces(self) -> list[str]:
        """BIOS settings over Redfish, or none."""
        return ["redfish", "no-bios"]

    @property
    def supported_firmware_interfaces(self) -> list[str]:
        """Firmware versions and SimpleUpdate over Redfish, or none."""
        return ["redfish", "no-firmware"]

    @property
    def supported_raid_interfaces(self) -> list[str]:
        """Storage volumes over Redfish, none, or the agent's (which Kiln's agent refuses)."""
        return ["redfish", "no-raid", "agent"]
