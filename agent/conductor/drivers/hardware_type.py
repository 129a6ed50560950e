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

    def supported_interfaces(self, interface_type: str) -> list[str]:
        """Supported names for ``interface_type`` ("power", "boot", ...)."""
        attr = f"supported_{interface_type}_interfaces"
        if not hasattr(self, attr):
            raise ValueError(f'{type(self).__name__} has no interface type "{interface_type}"')
        return list(getattr(self, attr))

    def get_properties(self) -> dict[str, str]:
        """Driver properties common to every interface of this type (none by default)."""
        return {}
