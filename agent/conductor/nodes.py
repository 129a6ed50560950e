"""Node records the API changes: create, update (with Ironic's rules on what may change when), delete."""

from __future__ import annotations

from oslo_log import log as logging
from oslo_utils import uuidutils

from agent.common import exception, row_dicts, states
from agent.conductor import vifs
from agent.conductor.drivers import dnsmasq, driver_factory
from agent.db import api as db_api

LOG = logging.getLogger(__name__)

_INTERFACE_FIELDS = {f"{name}_interface" for name in driver_factory.base.INTERFACE_TYPES}
# Provision states in which a node's driver and interfaces may change (Ironic's rule).
_INTERFACE_UPDATE_STATES = (states.ENROLL, states.MANAGEABLE, states.AVAILABLE, *states.UPDATE_ALLOWED_STATES)
_PROTECTABLE_STATES = (states.ACTIVE, states.RESCUE)
_DELETABLE_STATES = (*states.DELETE_ALLOWED_STATES, states.AVAILABLE)


def create_node(values: dict) -> dict:
    """Create a node, filling in its interfaces from its hardware type; return it."""
    values = dict(values)
    values["uuid"] = values.get("uuid") or uuidutils.generate_uuid()  # null: generated, as Ironic does
    values.update(driver_factory.check_and_update_node_interfaces(values))
    node = db_api.create_node(values)
    LOG.info("Node %s created (driver %s)", node.uuid, node.driver)
    return row_dicts.node_to_dict(node)


def update_node(task, values: dict) -> dict:
    """Change the locked node's fields (``values`` holds each changed field's new value); return it."""
    values = dict(values)
    node = task.node
    if "driver" in values or _INTERFACE_FIELDS & set(values):
        if node.provision_state not in _INTERFACE_UPDATE_STATES:
            raise exception.InvalidState(
                reason=f"the driver and interfaces of node {node.uuid} cannot change in provision "
                f'state "{node.provision_state}"; allowed in: {", ".join(_INTERFACE_UPDATE_STATES)}'
            )
        merged = {**row_dicts.node_to_dict(node), **values}
        if "driver" in values:
            for field in _INTERFACE_FIELDS - set(values):
                merged[field] = None
        values.update(driver_factory.check_and_update_node_interfaces(merged))
    if values.get("protected") and node.provision_state not in _PROTECTABLE_STATES:
        raise exception.InvalidState(
            reason=f"node {node.uuid} can only be made protected in provision state active or "
            f'rescue, not "{node.provision_state}"'
        )
    if values.get("protected") is False:
        values.setdefault("protected_reason", None)
    if values.get("protected_reason") and not values.get("protected", node.protected):
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid}: protected_reason can only be set when protected is true."
        )
    vifs.check_project_change(task, values)
    if values.get("maintenance") is False:
        values.update(maintenance_reason=None, fault=None)
    # Any state but available (Ironic keeps that for backwards compatibility): manage it first.
    if values.get("retired") and not node.retired and node.provision_state == states.AVAILABLE:
        raise exception.InvalidState(
            reason=f"node {node.uuid} can not have 'retired' set in provision state 'available'; "
            "move it to manageable first (baremetal node manage)"
        )
    if values.get("retired") is False:
        values.setdefault("retired_reason", None)
    # instance_name follows instance_info's display_name until it is set on its own (Ironic 1.104).
    display = (values.get("instance_info") or {}).get("display_name")
    if display and not values.get("instance_name", node.instance_name):
        values["instance_name"] = display
    task.update_node(values)
    return row_dicts.node_to_dict(task.node)


def destroy_node(task) -> None:
    """Delete the locked node if it is enrolled, manageable, available or in maintenance."""
    node = task.node
    if node.protected:
        raise exception.InvalidState(
            reason=f"node {node.uuid} is protected and cannot be undeployed, rebuilt or deleted; "
            "set protected to false first"
        )
    if node.instance_uuid and not node.maintenance:
        raise exception.InvalidState(
            reason=f"node {node.uuid} is associated with instance {node.instance_uuid}; "
            "undeploy it or remove its allocation first"
        )
    if node.provision_state not in _DELETABLE_STATES and not node.maintenance:
        raise exception.InvalidState(
            f'Can not delete node "{node.uuid}" while it is in provision state '
            f'"{node.provision_state}". Valid provision states to perform deletion are: '
            f'"{", ".join(_DELETABLE_STATES)}", or set the node into maintenance mode.'
        )
    for alloc in db_api.list_allocations(filters={"node_id": node.id}):
        db_api.destroy_allocation(alloc.uuid)
    db_api.destroy_node(node.uuid)
    # A node deleted in maintenance ran no driver clean-up: make sure dnsmasq no longer answers
    # its MACs or serves its boot options.
    buried = dnsmasq.remove_node_hosts(node.uuid)
    dnsmasq.remove_opts(node.uuid)
    LOG.info("Node %s deleted%s", node.uuid, f"; {buried} DHCP host entries removed" if buried else "")
