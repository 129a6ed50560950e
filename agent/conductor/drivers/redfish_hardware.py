"""The ``redfish`` hardware type: a BMC speaking Redfish (sushy)."""

from __future__ import annotations

from agent.conductor.drivers import hardware_type


class RedfishHardware(hardware_type.BMCHardwareType):
    """Power and management (boot device and mode) over Redfish; iPXE or PXE boot; direct deploy."""

    bmc_interface = "redfish"
