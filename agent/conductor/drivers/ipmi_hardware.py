"""The ``ipmi`` hardware type: a BMC speaking IPMI 2.0 (pyghmi)."""

from __future__ import annotations

from agent.conductor.drivers import hardware_type


class IPMIHardware(hardware_type.BMCHardwareType):
    """Power and management (boot device) over IPMI; iPXE or PXE boot; direct deploy."""

    bmc_interface = "ipmi"
