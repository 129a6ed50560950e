"""The ``flat`` network interface: one provisioning network served by dnsmasq, tenants on the same one.

Nothing is rewired; adding the node to the provisioning (or cleaning) network only checks that it
can network-boot there: at least one port with pxe_enabled and a well-formed MAC.
"""

from __future__ import annotations

from agent.common import exception
from agent.conductor.drivers import base, boot_files


def _check_pxe_ports(task, network: str) -> list[str]:
    macs = []
    for port in task.ports:
        if port.pxe_enabled:
            macs.append(boot_files.normalize_mac(port.address, f"Node {task.node.uuid}, port {port.uuid}: "))
    if not macs:
        raise exception.InvalidParameterValue(
            err=f"Node {task.node.uuid} has no port with pxe_enabled=True, so it cannot boot on the "
            f"{network} network; set pxe_enabled on the port of its boot NIC."
        )
    return macs


class FlatNetwork(base.NetworkInterface):
    """All nodes on one flat network; provisioning and tenant traffic share it."""

    def validate(self, task) -> None:
        """The node needs a PXE-enabled port with a valid MAC."""
        _check_pxe_ports(task, "provisioning")

    def add_provisioning_network(self, task) -> None:
        """Nothing to wire; check the node has a PXE-enabled port."""
        _check_pxe_ports(task, "provisioning")

    def remove_provisioning_network(self, task) -> None:
        """Nothing to unwire on a flat network."""

    def add_cleaning_network(self, task) -> None:
        """Cleaning uses the provisioning network; check the node has a PXE-enabled port."""
        _check_pxe_ports(task, "cleaning")

    def remove_cleaning_network(self, task) -> None:
        """Nothing to unwire on a flat network."""

    def configure_tenant_networks(self, task) -> None:
        """The tenant network is the flat network: nothing to do."""

    def unconfigure_tenant_networks(self, task) -> None:
        """Nothing to do on a flat network."""
