"""VIFs: attach, detach and list, stored as Ironic stores them (port/portgroup internal_info).

A VIF goes on a free portgroup (one with ports) first, then on a free port that is in no portgroup,
PXE-enabled ones first; ``port_uuid``/``portgroup_uuid`` pick one. Its id names a declared network
(agent.conductor.drivers.network.declared), which the caller and the node's project must be allowed
to use; with the ``neutron`` network interface it is a Neutron port instead. The node's network
interface is told, so it can rewire an active node at once. With the ``noop`` network interface
VIFs are accepted and kept nowhere, as in Ironic.
"""

from __future__ import annotations

import types
from importlib import metadata
from typing import Any

from agent.common import exception, states
from agent.conductor.drivers import driver_factory
from agent.conductor.drivers.network import declared
from agent.db import api as db_api

VIF_KEY = "tenant_vif_port_id"


def _objects(task) -> list[tuple[str, Any]]:
    return [("portgroup", pg) for pg in task.portgroups] + [("port", p) for p in task.ports]


def vif_of(obj: Any) -> str | None:
    """The VIF attached to a port or portgroup, if any."""
    return (obj.internal_info or {}).get(VIF_KEY)


def list_vifs(task) -> list[dict[str, str]]:
    """[{"id": VIF}] of every VIF on the node's portgroups and ports (none with the noop interface)."""
    if not task.driver.network.records_vifs:
        return []
    node_id = task.node.id
    rows = db_api.list_portgroups(node_id=node_id) + db_api.list_ports(node_id=node_id)
    return [{"id": vif_of(r)} for r in rows if vif_of(r)]


def _physnet_ok(task, kind: str, obj: Any, network: declared.Network) -> bool:
    if not network.physical_network:
        return True
    if kind == "port":
        return obj.physical_network == network.physical_network
    members = [p for p in task.ports if p.portgroup_id == obj.id]
    return bool(members) and all(p.physical_network == network.physical_network for p in members)


def _named(task, info: dict) -> tuple[str, Any] | None:
    for kind, key in (("port", "port_uuid"), ("portgroup", "portgroup_uuid")):
        if info.get(key):
            for k, obj in _objects(task):
                if k == kind and obj.uuid == info[key]:
                    return k, obj
            raise exception.InvalidParameterValue(
                err=f"Node {task.node.uuid} has no {kind} {info[key]} to attach VIF {info['id']} to."
            )
    return None


def _free(task, network: declared.Network, vif: str) -> tuple[str, Any]:
    grouped = {p.portgroup_id for p in task.ports if p.portgroup_id is not None}
    candidates = [
        (kind, obj)
        for kind, obj in _objects(task)
        if not vif_of(obj)
        and (obj.id in grouped if kind == "portgroup" else obj.portgroup_id is None)
        and _physnet_ok(task, kind, obj, network)
    ]
    candidates.sort(key=lambda c: (c[0] != "portgroup", not getattr(c[1], "pxe_enabled", True)))
    if not candidates:
        raise exception.NoFreePhysicalPorts(vif=vif)
    return candidates[0]


def _save(kind: str, obj: Any, vif: str | None) -> None:
    info = dict(obj.internal_info or {})
    if vif is None:
        info.pop(VIF_KEY, None)
    else:
        info[VIF_KEY] = vif
    update = db_api.update_portgroup if kind == "portgroup" else db_api.update_port
    update(obj.uuid, {"internal_info": info})
    obj.internal_info = info


def attach(task, ctxt: dict, info: dict) -> None:
    """Attach VIF ``info["id"]`` (a declared network) to a port or portgroup of the task's node."""
    vif = info["id"]
    if not task.driver.network.records_vifs:
        return
    network = task.driver.network.vif_network(task, vif, ctxt)
    for kind, obj in _objects(task):
        if vif_of(obj) == vif:
            raise exception.VifAlreadyAttached(vif=vif, object_type=kind.capitalize(), object_uuid=obj.uuid)
    kind, obj = _named(task, info) or _free(task, network, vif)
    if vif_of(obj):
        raise exception.VifAlreadyAttached(
            vif=vif_of(obj), object_type=kind.capitalize(), object_uuid=obj.uuid
        )
    _save(kind, obj, vif)
    try:
        task.driver.network.vif_attached(task, kind, obj, network)
    except Exception:
        _save(kind, obj, None)
        raise


def _declared_vifs(task) -> bool:
    """Whether the node's VIFs name declared networks, as its network interface (class) says."""
    driver = getattr(task, "driver", None)
    if driver is not None:
        return driver.network.declared_vifs
    name = task.node.network_interface
    for ep in metadata.entry_points(group=f"{driver_factory.INTERFACE_NAMESPACE}network"):
        if ep.name == name:
            return getattr(ep.load(), "declared_vifs", True)
    return True


def check_project_change(task, values: dict) -> None:
    """Refuse a new owner, lessee or service network that the node's attached VIFs do not allow."""
    if not {"owner", "lessee", "driver_info"} & set(values) or not _declared_vifs(task):
        return
    node = task.node
    after = types.SimpleNamespace(
        uuid=node.uuid,
        owner=values.get("owner", node.owner),
        lessee=values.get("lessee", node.lessee),
        driver_info=values.get("driver_info", node.driver_info),
    )
    for kind, obj in _objects(task):
        vif = vif_of(obj)
        if not vif:
            continue
        try:
            declared.check_attach(after, declared.get_network(vif), {"is_admin": True})
        except exception.NetworkNotAllowed as exc:
            raise exception.NetworkNotAllowed(
                f"Cannot change node {node.uuid} so: VIF {vif} on {kind} {obj.uuid} would no longer be "
                f"allowed ({exc}); detach it first."
            ) from None


def check_removable(node: Any, kind: str, obj: Any) -> None:
    """Refuse deleting a port or portgroup that carries a VIF of an active node (not in maintenance)."""
    vif = vif_of(obj)
    if vif and node.provision_state == states.ACTIVE and not node.maintenance:
        raise exception.InvalidState(
            f"Cannot delete {kind} {obj.uuid}: it carries VIF {vif} of active node {node.uuid}; "
            "detach the VIF first (baremetal node vif detach)."
        )


def detach(task, vif: str) -> None:
    """Detach VIF ``vif`` from the task's node; VifNotAttached when it is not attached."""
    if not task.driver.network.records_vifs:
        return
    for kind, obj in _objects(task):
        if vif_of(obj) == vif:
            task.driver.network.vif_detached(task, kind, obj)
            _save(kind, obj, None)
            return
    raise exception.VifNotAttached(vif=vif, node=task.node.uuid)
