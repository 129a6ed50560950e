"""The ``multitenant`` network interface: each node's switch ports on the VLAN its life calls for.

Inspection, cleaning and deployment put every cabled port (local_link_connection) on the node's
inspection, cleaning or provisioning network (driver_info, else [network]); when the node goes
active, each port moves to the VLAN of the VIF on it or on its portgroup, and a port with no VIF
goes to the switch's parking VLAN; undeploy parks them all before cleaning. A switch that cannot
be reached or refuses fails the operation with an error naming switch and port; if the move to
the tenant VLANs fails half-way, every port is parked before the error goes up, so an active node
is never left on a wrong VLAN.
"""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging

from agent.common import exception, states
from agent.conductor import vifs
from agent.conductor.drivers import base, flat
from agent.conductor.drivers.network import declared, switches
from agent.db import api as db_api

LOG = logging.getLogger(__name__)


_LACP = ("802.3ad", "4")


def _cabled(task, strict: bool = True) -> list[tuple[Any, switches.SwitchPort]]:
    """(port, switch port) of the node's cabled ports; ``strict``: every port must be cabled.

    Members of an 802.3ad portgroup are moved with the driver's bond commands (the switch side of
    a LACP bond), as networking-generic-switch does; other bond modes need plain access ports.
    """
    lacp = {pg.id for pg in task.portgroups if pg.mode in _LACP}
    found = []
    for port in task.ports:
        if not (port.local_link_connection or {}).get("port_id") and not strict:
            LOG.info("Node %s: port %s has no LLDP facts yet; left as it is", task.node.uuid, port.uuid)
            continue
        found.append((port, switches.switch_port(port, bond=port.portgroup_id in lacp)))
    return found


def _record(port: Any, vlan: int | None) -> None:
    info = dict(port.internal_info or {})
    if info.get(switches.VLAN_KEY) == vlan:
        return
    if vlan is None:
        info.pop(switches.VLAN_KEY, None)
    else:
        info[switches.VLAN_KEY] = vlan
    db_api.update_port(port.uuid, {"internal_info": info})
    port.internal_info = info


def _plug(port: Any, sp: switches.SwitchPort, network: declared.Network) -> None:
    switches.plug(sp, network.vlan_id, network.name)
    _record(port, network.vlan_id)


def _park(port: Any, sp: switches.SwitchPort) -> None:
    switches.park(sp, (port.internal_info or {}).get(switches.VLAN_KEY))
    _record(port, None)


def _service(task, key: str, strict: bool = True) -> None:
    network = declared.service_network(task.node, key)
    for port, sp in _cabled(task, strict):
        _plug(port, sp, network)


def _park_all(task, strict: bool = True) -> None:
    for port, sp in _cabled(task, strict):
        _park(port, sp)


def _tenant_network(task, port: Any) -> declared.Network | None:
    holder = port
    if port.portgroup_id is not None:
        holder = next((pg for pg in task.portgroups if pg.id == port.portgroup_id), port)
    vif = vifs.vif_of(holder)
    return declared.get_network(vif) if vif else None


class MultitenantNetwork(base.NetworkInterface):
    """Tenant isolation on the switch: VLANs per declared network, moved through the node's life."""

    def get_properties(self) -> dict[str, str]:
        """The service networks a node may name in driver_info (each defaults to [network])."""
        return {
            key: f"Declared network for {key.split('_')[0]}; default [network]{key}. Optional."
            for key in declared.SERVICE_KEYS
        }

    def validate(self, task) -> None:
        """A PXE port, declared service networks, and every port cabled to a declared switch."""
        flat._check_pxe_ports(task, "provisioning")
        for key in declared.SERVICE_KEYS:
            declared.service_network(task.node, key)
        _cabled(task)

    def add_provisioning_network(self, task) -> None:
        """Put every port on the provisioning VLAN."""
        _service(task, "provisioning_network")

    def remove_provisioning_network(self, task) -> None:
        """Park every port."""
        _park_all(task)

    def add_cleaning_network(self, task) -> None:
        """Put every port on the cleaning VLAN."""
        _service(task, "cleaning_network")

    def remove_cleaning_network(self, task) -> None:
        """Park every port."""
        _park_all(task)

    def add_rescuing_network(self, task) -> None:
        """Put every port on the rescuing VLAN."""
        _service(task, "rescuing_network")

    def remove_rescuing_network(self, task) -> None:
        """Park every port."""
        _park_all(task)

    def add_inspection_network(self, task) -> None:
        """Put the ports whose switch port is known on the inspection VLAN (LLDP finds the others)."""
        _service(task, "inspection_network", strict=False)

    def remove_inspection_network(self, task) -> None:
        """Park the ports whose switch port is known."""
        _park_all(task, strict=False)

    def configure_tenant_networks(self, task) -> None:
        """Each port to the VLAN of its VIF (or its portgroup's); ports with none are parked."""
        try:
            for port, sp in _cabled(task):
                network = _tenant_network(task, port)
                if network is None:
                    _park(port, sp)
                else:
                    _plug(port, sp, network)
        except Exception:
            self._park_after_failure(task)
            raise

    def _park_after_failure(self, task) -> None:
        for port, sp in _cabled(task):
            try:
                _park(port, sp)
            except exception.KilnException as exc:
                LOG.error("Node %s: could not park %s after a failed move: %s", task.node.uuid, sp.what, exc)

    def unconfigure_tenant_networks(self, task) -> None:
        """Park every port (the tenant VLANs are left)."""
        _park_all(task)

    def vif_attached(self, task, kind: str, obj: Any, network: Any) -> None:
        """On an active node, move the VIF's ports to its VLAN at once."""
        if task.node.provision_state == states.ACTIVE:
            for port, sp in self._ports_of(task, kind, obj):
                _plug(port, sp, network)

    def vif_detached(self, task, kind: str, obj: Any) -> None:
        """On an active node, park the VIF's ports at once."""
        if task.node.provision_state == states.ACTIVE:
            for port, sp in self._ports_of(task, kind, obj):
                _park(port, sp)

    def _ports_of(self, task, kind: str, obj: Any) -> list[tuple[Any, switches.SwitchPort]]:
        if kind == "port":
            return [(p, sp) for p, sp in _cabled(task) if p.id == obj.id]
        return [(p, sp) for p, sp in _cabled(task) if p.portgroup_id == obj.id]
