"""No-op interfaces: for concerns a hardware type does not handle (Ironic's "noop", "no-inspect")."""

from __future__ import annotations

from agent.common import exception
from agent.conductor.drivers import base


class NoopNetwork(base.NetworkInterface):
    """Leaves the ports on whatever flat network they are cabled to; VIFs are accepted and not kept."""

    records_vifs = False

    def validate(self, task) -> None:
        """Nothing to check."""

    def add_provisioning_network(self, task) -> None:
        """Nothing to do on a flat network."""

    def remove_provisioning_network(self, task) -> None:
        """Nothing to do on a flat network."""

    def configure_tenant_networks(self, task) -> None:
        """Nothing to do on a flat network."""

    def unconfigure_tenant_networks(self, task) -> None:
        """Nothing to do on a flat network."""


class NoInspect(base.InspectInterface):
    """Inspection is not supported: asking for it is an error naming the node."""

    def validate(self, task) -> None:
        """Nothing to check until inspection is asked for."""

    def inspect_hardware(self, task) -> str | None:
        """Refuse: this node has no inspect interface."""
        raise exception.InvalidParameterValue(
            err=f"Node {task.node.uuid} has inspect_interface no-inspect: inspection is not supported; "
            "set inspect_interface to one the hardware type supports."
        )
