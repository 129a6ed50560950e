"""The conductor's RPC endpoint on topic ``kiln.conductor``: the agents' methods and the API's.

A thin surface, as in Ironic: each method checks what it is asked, takes the node's lock and hands
the work to the module of its flow (``nodes``, ``verify``, ``inspection``, ``deployments``,
``cleaning``, ``adoption``, ``allocations``, ``power_actions``). Provision verbs move the state
machine and leave the slow part to a worker thread (``task.process_event(callback=...)``), so the
call returns at once, as Ironic's ``spawn_worker`` does.

API version history:
    1.0 - lookup, report_inventory, heartbeat, step_result (agents); node, port, provisioning,
          power, boot device, trait and allocation methods (kiln-api).
    1.1 - create/update/destroy_portgroup, vif_attach, vif_detach, vif_list (kiln-api).
    1.2 - attach_virtual_media, detach_virtual_media (kiln-api).
    1.3 - change_provision_state takes service_steps (service, unhold, rescue and unrescue flows).
    1.4 - set_target_raid_config (kiln-api; agent.conductor.bmc_endpoints).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import oslo_messaging as messaging

from agent.common import exception, row_dicts, states
from agent.common.interfaces import VALIDATED_INTERFACES
from agent.common.utils import error_text, expect_kiln_errors
from agent.conductor import (
    adoption,
    allocations,
    cleaning,
    deployments,
    failures,
    inspection,
    nodes,
    portgroups,
    power_actions,
    rescue,
    servicing,
    task_manager,
    verify,
    vifs,
)
from agent.conductor.agent_endpoints import AgentEndpoints
from agent.conductor.bmc_endpoints import BMCEndpoints
from agent.db import api as db_api

_MAINTENANCE_BLOCKED = (
    "deploy",
    "rebuild",
    "provide",
    "clean",
    "inspect",
    "adopt",
    "rescue",
    "unrescue",
    "service",
)


_SERVICE_STATES = (states.SERVICEWAIT, states.SERVICEHOLD, states.SERVICEFAIL)


def _abort(task: task_manager.TaskManager, **_: Any) -> None:
    state = task.node.provision_state
    if state in _SERVICE_STATES:
        servicing.abort(task)
    elif state == states.RESCUEWAIT:
        rescue.abort(task)
    else:
        failures.abort(task)


def _unhold(task: task_manager.TaskManager, **_: Any) -> None:
    if task.node.provision_state == states.SERVICEHOLD:
        servicing.unhold(task)
    else:  # deploy hold, clean hold: the next heartbeat carries on
        task.process_event("unhold")


# Provision events that start a flow; any other legal event just moves the state machine.
_FLOWS: dict[str, Callable[..., None]] = {
    "manage": lambda task, **_: verify.start_manage(task),
    "provide": lambda task, **_: cleaning.start_provide(task),
    "clean": lambda task, clean_steps=None, disable_ramdisk=None, **_: cleaning.start_clean(
        task, clean_steps, disable_ramdisk
    ),
    "abort": _abort,
    "unhold": _unhold,
    "deploy": lambda task, configdrive=None, deploy_steps=None, **_: deployments.start_deploy(
        task, "deploy", configdrive, deploy_steps
    ),
    "rebuild": lambda task, configdrive=None, deploy_steps=None, **_: deployments.start_deploy(
        task, "rebuild", configdrive, deploy_steps
    ),
    "delete": lambda task, **_: deployments.start_tear_down(task),
    "inspect": lambda task, **_: inspection.start_inspect(task),
    "adopt": lambda task, **_: adoption.start_adopt(task),
    "rescue": lambda task, rescue_password=None, **_: rescue.start_rescue(task, rescue_password),
    "unrescue": lambda task, **_: rescue.start_unrescue(task),
    "service": lambda task, service_steps=None, disable_ramdisk=None, **_: servicing.start_service(
        task, service_steps, disable_ramdisk
    ),
}


class ConductorManager(AgentEndpoints, BMCEndpoints):
    """Everything one conductor (``host``) serves over RPC."""

    RPC_API_VERSION = "1.4"
    target = messaging.Target(version=RPC_API_VERSION)

    def __init__(self, host: str) -> None:
        self.host = host

    # --- nodes ---------------------------------------------------------------------------------

    def create_node(self, ctxt: dict, values: dict) -> dict:
        """Create a node, filling in its interfaces from its hardware type; return it."""
        return nodes.create_node(values)

    def update_node(self, ctxt: dict, node_ident: str, values: dict) -> dict:
        """Change a node's fields (``values`` holds the new value of each changed field); return it."""
        with task_manager.acquire(ctxt, node_ident, purpose="node update", load_driver=False) as task:
            return nodes.update_node(task, values)

    def destroy_node(self, ctxt: dict, node_ident: str) -> None:
        """Delete a node that is enrolled, manageable, available or in maintenance."""
        with task_manager.acquire(ctxt, node_ident, purpose="node deletion", load_driver=False) as task:
            nodes.destroy_node(task)

    # --- provisioning ----------------------------------------------------------------------------

    def change_provision_state(
        self,
        ctxt: dict,
        node_ident: str,
        verb: str,
        configdrive: Any = None,
        clean_steps: list | None = None,
        deploy_steps: list | None = None,
        rescue_password: str | None = None,
        disable_ramdisk: bool | None = None,
        service_steps: list | None = None,
    ) -> None:
        """Start provision action ``verb`` (an API target such as "active" or "provide") on a node."""
        event = states.API_TARGETS.get(verb)
        if event is None:
            raise exception.InvalidParameterValue(
                err=f'Unknown provision target "{verb}"; use one of {", ".join(sorted(states.API_TARGETS))}.'
            )
        with task_manager.acquire(ctxt, node_ident, purpose=f"provision {verb}") as task:
            node = task.node
            states.next_state(node.provision_state, event, node.uuid)
            if disable_ramdisk is not None and event not in ("clean", "service"):
                raise exception.InvalidParameterValue(
                    err=f"Node {node.uuid}: disable_ramdisk is only valid with targets "
                    f'"clean" and "service", not "{verb}".'
                )
            if node.maintenance and event in _MAINTENANCE_BLOCKED:
                raise exception.NodeInMaintenance(op=verb, node=node.uuid)
            if event == "provide" and node.retired:
                raise exception.InvalidState(
                    reason=f"node {node.uuid} is retired and cannot be provided; "
                    "set retired to false first (baremetal node unset --retired)"
                )
            if event in ("rebuild", "delete") and node.protected:
                raise exception.InvalidState(
                    reason=f"node {node.uuid} is protected and cannot be undeployed or rebuilt; "
                    "set protected to false first"
                )
            start = _FLOWS.get(event)
            if start is None:
                task.process_event(event)
                return
            start(
                task,
                configdrive=configdrive,
                clean_steps=clean_steps,
                deploy_steps=deploy_steps,
                rescue_password=rescue_password,
                disable_ramdisk=disable_ramdisk,
                service_steps=service_steps,
            )

    # --- power and management ---------------------------------------------------------------------

    def change_power_state(
        self, ctxt: dict, node_ident: str, target: str, timeout: int | None = None
    ) -> None:
        """Start moving a node to power state ``target`` (power on/off, rebooting, soft ...)."""
        with task_manager.acquire(ctxt, node_ident, purpose=f"power {target}") as task:
            power_actions.start_power_change(task, target, timeout)

    def set_boot_device(self, ctxt: dict, node_ident: str, device: str, persistent: bool = False) -> None:
        """Set the device a node boots from next (or always, when ``persistent``)."""
        with task_manager.acquire(ctxt, node_ident, purpose="set boot device") as task:
            task.driver.management.validate(task)
            task.driver.management.set_boot_device(task, device, persistent=persistent)

    def get_boot_device(self, ctxt: dict, node_ident: str) -> dict:
        """Return {"boot_device": ..., "persistent": ...} of a node."""
        with task_manager.acquire(ctxt, node_ident, shared=True, purpose="get boot device") as task:
            return task.driver.management.get_boot_device(task)

    def get_supported_boot_devices(self, ctxt: dict, node_ident: str) -> list[str]:
        """Return the boot devices a node's management interface can set."""
        with task_manager.acquire(ctxt, node_ident, shared=True, purpose="boot devices") as task:
            return list(task.driver.management.get_supported_boot_devices(task))

    def validate_driver_interfaces(self, ctxt: dict, node_ident: str) -> dict:
        """Validate each interface of a node: {iface: {"result": bool | None, "reason": str | None}}."""
        with task_manager.acquire(ctxt, node_ident, shared=True, purpose="validate") as task:
            result: dict[str, dict[str, Any]] = {}
            # Those Kiln does not have answer "not supported".
            for name in VALIDATED_INTERFACES:
                iface = getattr(task.driver, name, None)
                if iface is None:
                    result[name] = {"result": None, "reason": "not supported"}
                    continue
                try:
                    iface.validate(task)
                except Exception as exc:  # noqa: BLE001 - the reason goes back to the operator
                    result[name] = {"result": False, "reason": error_text(exc)}
                else:
                    result[name] = {"result": True, "reason": None}
            return result

    # --- traits ----------------------------------------------------------------------------------

    def set_node_traits(self, ctxt: dict, node_ident: str, traits: list[str]) -> list[str]:
        """Replace a node's traits; return them."""
        with task_manager.acquire(ctxt, node_ident, purpose="set traits", load_driver=False) as task:
            return db_api.set_node_traits(task.node.uuid, list(traits))

    def add_node_trait(self, ctxt: dict, node_ident: str, trait: str) -> None:
        """Add one trait to a node."""
        with task_manager.acquire(ctxt, node_ident, purpose="add trait", load_driver=False) as task:
            db_api.add_node_trait(task.node.uuid, trait)

    def remove_node_trait(self, ctxt: dict, node_ident: str, trait: str | None = None) -> None:
        """Remove one trait from a node, or all of them when ``trait`` is None."""
        with task_manager.acquire(ctxt, node_ident, purpose="remove trait", load_driver=False) as task:
            if trait is None:
                db_api.set_node_traits(task.node.uuid, [])
            else:
                db_api.remove_node_trait(task.node.uuid, trait)

    # --- ports -----------------------------------------------------------------------------------

    def create_port(self, ctxt: dict, values: dict) -> dict:
        """Create a port of a node (``node_id`` an id, UUID or name), under the node's lock."""
        node_ident = values.get("node_id")
        if node_ident is None:
            return row_dicts.port_to_dict(db_api.create_port(values))
        node = (
            db_api.get_node_by_id(node_ident) if isinstance(node_ident, int) else db_api.get_node(node_ident)
        )
        with task_manager.acquire(ctxt, node.uuid, purpose="port create", load_driver=False) as task:
            return row_dicts.port_to_dict(db_api.create_port({**values, "node_id": task.node.id}))

    def update_port(self, ctxt: dict, port_ident: str, values: dict) -> dict:
        """Change a port's fields under its node's lock; return it."""
        port = db_api.get_port(port_ident)
        if port.node_id is None:
            return row_dicts.port_to_dict(db_api.update_port(port.uuid, values))
        node = db_api.get_node_by_id(port.node_id)
        with task_manager.acquire(ctxt, node.uuid, purpose="port update", load_driver=False):
            return row_dicts.port_to_dict(db_api.update_port(port.uuid, values))

    def destroy_port(self, ctxt: dict, port_ident: str) -> None:
        """Delete a port under its node's lock."""
        port = db_api.get_port(port_ident)
        if port.node_id is None:
            db_api.destroy_port(port.uuid)
            return
        node = db_api.get_node_by_id(port.node_id)
        with task_manager.acquire(ctxt, node.uuid, purpose="port delete", load_driver=False) as task:
            vifs.check_removable(task.node, "port", db_api.get_port(port.uuid))
            db_api.destroy_port(port.uuid)

    # --- portgroups and VIFs ----------------------------------------------------------------------

    def create_portgroup(self, ctxt: dict, values: dict) -> dict:
        """Create a portgroup of node ``values["node_id"]`` under the node's lock."""
        node = db_api.get_node_by_id(values["node_id"])
        with task_manager.acquire(ctxt, node.uuid, purpose="portgroup create", load_driver=False):
            return portgroups.create_portgroup(values)

    def update_portgroup(self, ctxt: dict, portgroup_ident: str, values: dict) -> dict:
        """Change a portgroup under its node's lock; return it."""
        node = db_api.get_node_by_id(db_api.get_portgroup(portgroup_ident).node_id)
        with task_manager.acquire(ctxt, node.uuid, purpose="portgroup update", load_driver=False):
            return portgroups.update_portgroup(portgroup_ident, values)

    def destroy_portgroup(self, ctxt: dict, portgroup_ident: str) -> None:
        """Delete an empty portgroup under its node's lock."""
        node = db_api.get_node_by_id(db_api.get_portgroup(portgroup_ident).node_id)
        with task_manager.acquire(ctxt, node.uuid, purpose="portgroup delete", load_driver=False) as task:
            vifs.check_removable(task.node, "portgroup", db_api.get_portgroup(portgroup_ident))
            db_api.destroy_portgroup(portgroup_ident)

    def attach_virtual_media(
        self, ctxt: dict, node_ident: str, device_type: str, image_url: str, download_source: str = "local"
    ) -> None:
        """Insert an image into the node's virtual media device (1.2)."""
        with task_manager.acquire(ctxt, node_ident, purpose="attach virtual media") as task:
            task.driver.management.validate(task)
            task.driver.management.attach_virtual_media(task, device_type, image_url, download_source)

    def detach_virtual_media(
        self, ctxt: dict, node_ident: str, device_types: list[str] | None = None
    ) -> None:
        """Eject the node's virtual media (of ``device_types``, or all) (1.2)."""
        with task_manager.acquire(ctxt, node_ident, purpose="detach virtual media") as task:
            task.driver.management.validate(task)
            task.driver.management.detach_virtual_media(task, device_types)

    def vif_attach(self, ctxt: dict, node_ident: str, vif_info: dict) -> None:
        """Attach a VIF (a declared network the caller and the node's project may use)."""
        with task_manager.acquire(ctxt, node_ident, purpose="vif attach") as task:
            vifs.attach(task, ctxt, vif_info)

    def vif_detach(self, ctxt: dict, node_ident: str, vif_id: str) -> None:
        """Detach a VIF from the node."""
        with task_manager.acquire(ctxt, node_ident, purpose="vif detach") as task:
            vifs.detach(task, vif_id)

    def vif_list(self, ctxt: dict, node_ident: str) -> list[dict]:
        """The node's VIFs, [{"id": ...}]."""
        with task_manager.acquire(ctxt, node_ident, shared=True, purpose="vif list") as task:
            return vifs.list_vifs(task)

    # --- allocations -----------------------------------------------------------------------------

    def create_allocation(self, ctxt: dict, values: dict) -> dict:
        """Record an allocation in state "allocating" and pick its node in the background."""
        return allocations.create_allocation(ctxt, values)

    def update_allocation(self, ctxt: dict, ident: str, values: dict) -> dict:
        """Change an allocation's name or extra; return it."""
        return row_dicts.allocation_to_dict(db_api.update_allocation(ident, values))

    def destroy_allocation(self, ctxt: dict, ident: str) -> None:
        """Delete an allocation, freeing its node (refused while the node is active, unless maintenance)."""
        allocations.destroy_allocation(ctxt, ident)


expect_kiln_errors(ConductorManager)
