"""The ``neutron`` network interface: the node's switch ports moved by Neutron (ML2), as Ironic's is.

For inspection, cleaning, provisioning and rescue, one Neutron port per PXE-enabled Kiln port is
created on the matching network ([neutron] option, or the node's driver_info), bound to the node:
``binding:vnic_type`` baremetal, ``binding:host_id`` the node's UUID and ``binding:profile``
``local_link_information`` from the port's LLDP facts (switch_id, port_id, switch_info). A
mechanism driver such as networking-generic-switch then puts the switch port on the network's
VLAN; the port is deleted afterwards. The VIFs attached to the node are Neutron port ids: when
the node goes active they are bound the same way (a portgroup's VIF with every member's link and
the bond as ``local_group_information``), and unbound on undeploy. Every Neutron error names
Neutron's URL.
"""

from __future__ import annotations

import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from oslo_log import log as logging

from agent.common import exception, states
from agent.common.config import CONF
from agent.conductor import vifs
from agent.conductor.drivers import base, flat
from agent.db import api as db_api

LOG = logging.getLogger(__name__)

SERVICE_KEYS = ("provisioning_network", "cleaning_network", "inspection_network", "rescuing_network")
_LLC_KEYS = ("switch_id", "port_id", "switch_info")
VNIC_TYPE = "baremetal"
DEVICE_OWNER = "baremetal:none"


def _url() -> str:
    return CONF.neutron.url or "the Keystone catalog's network endpoint"


def _connection() -> Any:
    """An openstacksdk connection to Neutron, from [neutron] (keystoneauth options, url)."""
    import openstack.connection
    from keystoneauth1 import loading as ks_loading
    from keystoneauth1 import noauth

    auth = ks_loading.load_auth_from_conf_options(CONF, "neutron")
    if auth is None:
        if not CONF.neutron.url:
            raise exception.InvalidParameterValue(
                err="[neutron] has neither auth_type (keystoneauth) nor url: set url to Neutron's endpoint "
                "(auth_type = none for a Neutron with noauth), or auth_type and its options."
            )
        auth = noauth.NoAuth()
    session = ks_loading.load_session_from_conf_options(CONF, "neutron", auth=auth)
    extra = {"network_endpoint_override": CONF.neutron.url} if CONF.neutron.url else {}
    return openstack.connection.Connection(session=session, region_name=CONF.neutron.region_name, **extra)


@contextmanager
def _neutron(what: str) -> Iterator[Any]:
    """A connection; any failure inside becomes a NeutronError naming Neutron's URL and ``what``."""
    try:
        yield _connection()
    except exception.KilnException:
        raise
    except Exception as exc:  # noqa: BLE001 - every openstacksdk/keystoneauth error is Neutron's
        text = str(exc).strip() or type(exc).__name__
        raise exception.NeutronError(url=_url(), error=f"{what} failed: {text}") from exc


def service_network_ref(node: Any, key: str) -> str | None:
    """The node's ``key`` network (name or UUID): driver_info, else [neutron], else the provisioning one."""
    info = node.driver_info or {}
    ref = info.get(key) or getattr(CONF.neutron, key)
    if not ref and key != "provisioning_network":
        ref = info.get("provisioning_network") or CONF.neutron.provisioning_network
    return ref or None


def _find_network(conn: Any, node: Any, key: str) -> Any:
    ref = service_network_ref(node, key)
    if not ref:
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid} has no {key}: set driver_info {key} or [neutron]{key} "
            "(or provisioning_network) to a Neutron network's name or UUID."
        )
    network = conn.network.find_network(ref)
    if network is None:
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid}: {key} {ref!r} is no network in Neutron at {_url()}."
        )
    return network


def _link(port: Any) -> dict[str, str]:
    llc = port.local_link_connection or {}
    if not llc.get("port_id"):
        raise exception.InvalidParameterValue(
            err=f"Port {port.uuid} ({port.address}) has no local_link_connection port_id, so Neutron cannot "
            "bind it to a switch port; inspect the node (LLDP) or set it."
        )
    return {key: llc[key] for key in _LLC_KEYS if llc.get(key)}


def _pxe_ports(task) -> list[Any]:
    flat._check_pxe_ports(task, "provisioning")
    return [p for p in task.ports if p.pxe_enabled]


def _binding(node: Any, links: list[dict], address: str, group: Any = None) -> dict[str, Any]:
    profile: dict[str, Any] = {"local_link_information": links}
    if group is not None:
        profile["local_group_information"] = {
            "id": group.uuid,
            "name": group.name,
            "bond_mode": group.mode,
            "bond_properties": group.properties or {},
        }
    return {
        "binding_vnic_type": VNIC_TYPE,
        "binding_host_id": node.uuid,
        "binding_profile": profile,
        "mac_address": address,
    }


def _wait_active(conn: Any, port_ids: list[str], what: str) -> None:
    """Wait until each Neutron port is ACTIVE (its switch port configured); a binding failure raises."""
    deadline = time.monotonic() + CONF.neutron.port_active_timeout
    pending = list(port_ids)
    while pending:
        port = conn.network.get_port(pending[0])
        if port.binding_vif_type == "binding_failed":
            raise exception.NeutronError(
                url=_url(),
                error=f"{what}: port {port.id} failed to bind (no mechanism driver took "
                f"{port.binding_profile}); check the switch declared for it in Neutron",
            )
        if port.status == "ACTIVE" or CONF.neutron.port_active_timeout == 0:
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise exception.NeutronError(
                url=_url(),
                error=f"{what}: port {port.id} is still {port.status} after "
                f"{CONF.neutron.port_active_timeout} s (the switch was not configured; see Neutron's log)",
            )
        time.sleep(0.5)


def _purpose(key: str) -> str:
    return key.split("_")[0]


def _record(port: Any, key: str, value: str | None) -> None:
    info = dict(port.internal_info or {})
    if value is None:
        info.pop(key, None)
    else:
        info[key] = value
    db_api.update_port(port.uuid, {"internal_info": info})
    port.internal_info = info


def add_service_ports(task, key: str, strict: bool = True) -> None:
    """Create and bind a Neutron port on the node's ``key`` network for each PXE-enabled port.

    ``strict``: every PXE-enabled port must have its LLDP facts; else those without are left as
    they are (inspection is what finds them).
    """
    node, purpose = task.node, _purpose(key)
    ports = _pxe_ports(task)
    if not strict:
        for port in [p for p in ports if not (p.local_link_connection or {}).get("port_id")]:
            LOG.info("Node %s: port %s has no LLDP facts yet; left as it is", node.uuid, port.uuid)
            ports.remove(port)
    links = [_link(p) for p in ports]
    with _neutron(f"putting node {node.uuid} on its {key}") as conn:
        network = _find_network(conn, node, key)
        _delete_service_ports(conn, task, purpose, network.id)  # left by an earlier try: a retry converges
        made = []
        try:
            for port, link in zip(ports, links, strict=True):
                created = conn.network.create_port(
                    network_id=network.id,
                    name=f"kiln-{purpose}-{port.uuid}",
                    device_id=node.uuid,
                    device_owner=DEVICE_OWNER,
                    **_binding(node, [link], port.address),
                )
                made.append(created.id)
                _record(port, f"{purpose}_vif_port_id", created.id)
                LOG.info("Node %s: port %s on %s as Neutron port %s", node.uuid, port.uuid, key, created.id)
            _wait_active(conn, made, f"{key} {network.name or network.id}")
        except Exception:
            try:
                _delete_service_ports(conn, task, purpose, network.id)
            except Exception as exc:  # noqa: BLE001 - the first error is the one to report
                LOG.error("Node %s: could not delete its %s ports after a failure: %s", node.uuid, key, exc)
            raise


def _delete_service_ports(conn: Any, task, purpose: str, network_id: str | None) -> None:
    key = f"{purpose}_vif_port_id"
    ids = {p.internal_info[key] for p in task.ports if (p.internal_info or {}).get(key)}
    if network_id is not None:
        names = {f"kiln-{purpose}-{p.uuid}" for p in task.ports}
        found = conn.network.ports(device_id=task.node.uuid, network_id=network_id)
        ids |= {p.id for p in found if p.name in names}
    for port_id in sorted(ids):
        conn.network.delete_port(port_id, ignore_missing=True)
        LOG.info("Node %s: Neutron port %s (%s) deleted", task.node.uuid, port_id, purpose)
    for port in task.ports:
        if (port.internal_info or {}).get(key):
            _record(port, key, None)


def remove_service_ports(task, key: str) -> None:
    """Delete the node's Neutron ports on its ``key`` network (the switch ports leave its VLAN)."""
    node = task.node
    with _neutron(f"taking node {node.uuid} off its {key}") as conn:
        ref = service_network_ref(node, key)
        network = conn.network.find_network(ref) if ref else None
        _delete_service_ports(conn, task, _purpose(key), network.id if network else None)


def _holders(task) -> list[tuple[str, list[dict], str, Any]]:
    """(VIF, links, MAC, portgroup or None) for each port and portgroup of the node that carries a VIF."""
    found = []
    for group in task.portgroups:
        vif = vifs.vif_of(group)
        members = [p for p in task.ports if p.portgroup_id == group.id]
        if vif and members:
            found.append((vif, [_link(p) for p in members], group.address or members[0].address, group))
    for port in task.ports:
        vif = vifs.vif_of(port)
        if vif:
            found.append((vif, [_link(port)], port.address, None))
    return found


def _bind(conn: Any, node: Any, vif: str, links: list[dict], address: str, group: Any) -> None:
    current = conn.network.get_port(vif)
    if current.binding_host_id:
        conn.network.update_port(vif, binding_host_id="", binding_profile={})
    conn.network.update_port(vif, **_binding(node, links, address, group))
    LOG.info("Node %s: tenant VIF %s bound to %s", node.uuid, vif, [link["port_id"] for link in links])


def _unbind(conn: Any, node: Any, vif: str) -> None:
    port = conn.network.find_port(vif)
    if port is None:
        LOG.warning("Node %s: tenant VIF %s is gone from Neutron; nothing to unbind", node.uuid, vif)
        return
    if port.binding_host_id:
        conn.network.update_port(vif, binding_host_id="", binding_profile={})
        LOG.info("Node %s: tenant VIF %s unbound", node.uuid, vif)


class NeutronNetwork(base.NetworkInterface):
    """Networks and switch ports managed by Neutron; VIFs are Neutron ports."""

    declared_vifs = False

    def get_properties(self) -> dict[str, str]:
        """The service networks a node may name in driver_info (each defaults to [neutron])."""
        return {
            key: f"Neutron network (name or UUID) for {_purpose(key)}; default [neutron]{key}. Optional."
            for key in SERVICE_KEYS
        }

    def validate(self, task) -> None:
        """PXE ports with LLDP facts, and service networks that Neutron knows."""
        for port in _pxe_ports(task):
            _link(port)
        with _neutron(f"checking the networks of node {task.node.uuid}") as conn:
            for key in SERVICE_KEYS:
                _find_network(conn, task.node, key)

    def add_provisioning_network(self, task) -> None:
        """Bind the PXE ports on the provisioning network."""
        add_service_ports(task, "provisioning_network")

    def remove_provisioning_network(self, task) -> None:
        """Delete the provisioning ports."""
        remove_service_ports(task, "provisioning_network")

    def add_cleaning_network(self, task) -> None:
        """Bind the PXE ports on the cleaning network."""
        add_service_ports(task, "cleaning_network")

    def remove_cleaning_network(self, task) -> None:
        """Delete the cleaning ports."""
        remove_service_ports(task, "cleaning_network")

    def add_inspection_network(self, task) -> None:
        """Bind the PXE ports whose switch port is known on the inspection network."""
        add_service_ports(task, "inspection_network", strict=False)

    def remove_inspection_network(self, task) -> None:
        """Delete the inspection ports."""
        remove_service_ports(task, "inspection_network")

    def configure_tenant_networks(self, task) -> None:
        """Bind every VIF (a Neutron port) to its Kiln port or portgroup, then wait for the switch."""
        node = task.node
        holders = _holders(task)
        with _neutron(f"binding the tenant VIFs of node {node.uuid}") as conn:
            for vif, links, address, group in holders:
                _bind(conn, node, vif, links, address, group)
            _wait_active(conn, [h[0] for h in holders], "tenant VIF")

    def unconfigure_tenant_networks(self, task) -> None:
        """Unbind every VIF (the switch ports leave the tenant VLANs)."""
        node = task.node
        with _neutron(f"unbinding the tenant VIFs of node {node.uuid}") as conn:
            for vif, *_ in _holders(task):
                _unbind(conn, node, vif)

    def vif_network(self, task, vif: str, ctxt: dict) -> Any:
        """VIF ``vif`` must be a port in Neutron; its network (physical network left unmatched)."""
        with _neutron(f"looking up VIF {vif}") as conn:
            port = conn.network.find_port(vif)
            if port is None:
                raise exception.NetworkNotFound(
                    f"VIF {vif} is no port in Neutron at {_url()}; create it there first "
                    "(openstack port create)."
                )
        return types.SimpleNamespace(name=port.network_id, physical_network=None)

    def vif_attached(self, task, kind: str, obj: Any, network: Any) -> None:
        """On an active node, bind the VIF at once."""
        if task.node.provision_state != states.ACTIVE:
            return
        for vif, links, address, group in _holders(task):
            if vif == vifs.vif_of(obj):
                with _neutron(f"binding VIF {vif} of node {task.node.uuid}") as conn:
                    _bind(conn, task.node, vif, links, address, group)
                    _wait_active(conn, [vif], "tenant VIF")

    def vif_detached(self, task, kind: str, obj: Any) -> None:
        """On an active node, unbind the VIF at once."""
        vif = vifs.vif_of(obj)
        if task.node.provision_state == states.ACTIVE and vif:
            with _neutron(f"unbinding VIF {vif} of node {task.node.uuid}") as conn:
                _unbind(conn, task.node, vif)
