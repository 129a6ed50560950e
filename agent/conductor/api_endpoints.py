"""The conductor side of the REST API: every change the API asks for, under the node's lock.

Provision verbs take the lock, move the state machine and hand the slow part to a worker thread
(``task.process_event(callback=...)``), so the RPC call returns at once, as Ironic's
``spawn_worker`` does. The worker moves the node on ("done", "wait" or "fail").
"""

from __future__ import annotations

import concurrent.futures
import random
import threading
from typing import Any

from oslo_log import log as logging
from oslo_utils import uuidutils

from agent.common import exception, row_dicts, states
from agent.common.interfaces import VALIDATED_INTERFACES
from agent.common.utils import error_text, expect_kiln_errors, utcnow
from agent.conductor import cleaning, deployments, task_manager
from agent.conductor.drivers import dnsmasq, driver_factory
from agent.db import api as db_api

LOG = logging.getLogger(__name__)

_INTERFACE_FIELDS = {f"{name}_interface" for name in driver_factory.base.INTERFACE_TYPES}
# Provision states in which a node's driver and interfaces may change (Ironic's rule).
_INTERFACE_UPDATE_STATES = (states.ENROLL, states.MANAGEABLE, states.AVAILABLE, *states.UPDATE_ALLOWED_STATES)
_PROTECTABLE_STATES = (states.ACTIVE, states.RESCUE)
_DELETABLE_STATES = (*states.DELETE_ALLOWED_STATES, states.AVAILABLE)
_MAINTENANCE_BLOCKED = ("deploy", "rebuild", "provide", "clean", "inspect", "adopt", "rescue", "unrescue")

ALLOCATING = "allocating"
ALLOCATION_ACTIVE = "active"
ALLOCATION_ERROR = "error"

_alloc_pool: concurrent.futures.ThreadPoolExecutor | None = None
_alloc_lock = threading.Lock()


def _allocation_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _alloc_pool
    with _alloc_lock:
        if _alloc_pool is None:
            _alloc_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=4, thread_name_prefix="kiln-alloc"
            )
        return _alloc_pool


class ApiEndpoints:
    """Mixin of ConductorManager: the RPC methods behind kiln-api."""

    host: str

    # --- nodes ---------------------------------------------------------------------------------

    def create_node(self, ctxt: dict, values: dict) -> dict:
        """Create a node, filling in its interfaces from its hardware type; return it."""
        values = dict(values)
        values.setdefault("uuid", uuidutils.generate_uuid())
        values.update(driver_factory.check_and_update_node_interfaces(values))
        node = db_api.create_node(values)
        LOG.info("Node %s created (driver %s)", node.uuid, node.driver)
        return row_dicts.node_to_dict(node)

    def update_node(self, ctxt: dict, node_ident: str, values: dict) -> dict:
        """Change a node's fields (``values`` holds the new value of each changed field); return it."""
        values = dict(values)
        with task_manager.acquire(ctxt, node_ident, purpose="node update", load_driver=False) as task:
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
            if values.get("maintenance") is False:
                values.update(maintenance_reason=None, fault=None)
            if values.get("retired") is False:
                values.setdefault("retired_reason", None)
            task.update_node(values)
            return row_dicts.node_to_dict(task.node)

    def destroy_node(self, ctxt: dict, node_ident: str) -> None:
        """Delete a node that is enrolled, manageable, available or in maintenance."""
        with task_manager.acquire(ctxt, node_ident, purpose="node deletion", load_driver=False) as task:
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
            # A node deleted in maintenance ran no driver clean-up: make sure dnsmasq no longer
            # answers its MACs or serves its boot options.
            buried = dnsmasq.remove_node_hosts(node.uuid)
            dnsmasq.remove_opts(node.uuid)
            LOG.info(
                "Node %s deleted%s", node.uuid, f"; {buried} DHCP host entries removed" if buried else ""
            )

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
            if node.maintenance and event in _MAINTENANCE_BLOCKED:
                raise exception.NodeInMaintenance(op=verb, node=node.uuid)
            if event in ("rebuild", "delete") and node.protected:
                raise exception.InvalidState(
                    reason=f"node {node.uuid} is protected and cannot be undeployed or rebuilt; "
                    "set protected to false first"
                )
            handler = getattr(self, f"_start_{event}", None)
            if handler is None:
                task.process_event(event)
                return
            handler(
                task,
                configdrive=configdrive,
                clean_steps=clean_steps,
                deploy_steps=deploy_steps,
                rescue_password=rescue_password,
                disable_ramdisk=disable_ramdisk,
            )

    def _fail(self, task: task_manager.TaskManager, what: str, exc: BaseException) -> None:
        msg = f"{what} failed on node {task.node.uuid}: {error_text(exc)}"
        LOG.error(msg)
        task.refresh()
        try:
            task.process_event("fail", last_error=msg)
        except exception.InvalidStateRequested:
            task.update_node({"last_error": msg})

    def _start_manage(self, task: task_manager.TaskManager, **_: Any) -> None:
        if task.node.provision_state != states.ENROLL:
            task.process_event("manage")
            return
        task.process_event("manage", callback=self._do_verify, call_args=(task,))

    def _do_verify(self, task: task_manager.TaskManager) -> None:
        try:
            task.driver.power.validate(task)
            task.driver.management.validate(task)
            power = task.driver.power.get_power_state(task)
            task.update_node({"power_state": power})
            task.process_event("done")
        except Exception as exc:  # noqa: BLE001 - any failure fails verification with its message
            self._fail(task, "Verifying the BMC credentials", exc)

    def _start_provide(self, task: task_manager.TaskManager, **_: Any) -> None:
        task.process_event("provide", callback=self._do_clean, call_args=(task, None))

    def _start_clean(self, task: task_manager.TaskManager, clean_steps: list | None = None, **_: Any) -> None:
        steps = _check_steps(clean_steps, "clean_steps", task.node.uuid, required=True)
        task.process_event(
            "clean", callback=self._do_clean, call_args=(task, steps), target_state=states.MANAGEABLE
        )

    def _do_clean(self, task: task_manager.TaskManager, steps: list | None) -> None:
        cleaning.do_node_clean(task, steps)

    def _start_abort(self, task: task_manager.TaskManager, **_: Any) -> None:
        deployments.abort(task)

    def _start_deploy(self, task: task_manager.TaskManager, configdrive: Any = None, **kw: Any) -> None:
        self._begin_deploy(task, "deploy", configdrive, kw.get("deploy_steps"))

    def _start_rebuild(self, task: task_manager.TaskManager, configdrive: Any = None, **kw: Any) -> None:
        self._begin_deploy(task, "rebuild", configdrive, kw.get("deploy_steps"))

    def _begin_deploy(self, task: task_manager.TaskManager, event: str, configdrive: Any, steps: Any) -> None:
        steps = _check_steps(steps, "deploy_steps", task.node.uuid, required=False)
        task.driver.power.validate(task)
        task.driver.deploy.validate(task)
        info = dict(task.node.instance_info or {})
        if configdrive is not None:
            info["configdrive"] = configdrive
        if steps:
            info["deploy_steps"] = steps
        task.update_node({"instance_info": info})
        task.process_event(event, callback=self._do_deploy, call_args=(task,))

    def _do_deploy(self, task: task_manager.TaskManager) -> None:
        try:
            deploy = task.driver.deploy
            deploy.prepare(task)
            result = deploy.deploy(task)
            if result == states.DEPLOYWAIT:
                task.process_event("wait")
                return
            task.driver.boot.prepare_instance(task)
            task.driver.power.set_power_state(task, states.POWER_ON)
            task.update_node({"power_state": task.driver.power.get_power_state(task)})
            task.process_event("done")
        except Exception as exc:  # noqa: BLE001
            self._fail(task, "Deployment", exc)

    def _start_delete(self, task: task_manager.TaskManager, **_: Any) -> None:
        task.process_event("delete", callback=self._do_tear_down, call_args=(task,))

    def _do_tear_down(self, task: task_manager.TaskManager) -> None:
        try:
            task.driver.deploy.tear_down(task)
            task.driver.deploy.clean_up(task)
            task.driver.boot.clean_up_instance(task)
            task.driver.power.set_power_state(task, states.POWER_OFF)
            node = task.node
            for alloc in db_api.list_allocations(filters={"node_id": node.id}):
                db_api.destroy_allocation(alloc.uuid)
            task.update_node(
                {
                    "instance_info": {},
                    "instance_uuid": None,
                    "power_state": task.driver.power.get_power_state(task),
                }
            )
            task.process_event("clean")
        except Exception as exc:  # noqa: BLE001
            self._fail(task, "Tear down", exc)
            return
        self._do_clean(task, None)

    def _start_inspect(self, task: task_manager.TaskManager, **_: Any) -> None:
        task.driver.inspect.validate(task)
        task.update_node({"inspection_started_at": utcnow(), "inspection_finished_at": None})
        task.process_event("inspect", callback=self._do_inspect, call_args=(task,))

    def _do_inspect(self, task: task_manager.TaskManager) -> None:
        try:
            result = task.driver.inspect.inspect_hardware(task)
            if result == states.INSPECTWAIT:
                task.process_event("wait")
                return
            task.update_node({"inspection_finished_at": utcnow()})
            task.process_event("done")
        except Exception as exc:  # noqa: BLE001
            self._fail(task, "Inspection", exc)

    def _start_adopt(self, task: task_manager.TaskManager, **_: Any) -> None:
        task.process_event("adopt", callback=self._do_adopt, call_args=(task,))

    def _do_adopt(self, task: task_manager.TaskManager) -> None:
        try:
            task.driver.power.validate(task)
            task.driver.deploy.validate(task)
            task.driver.deploy.take_over(task)
            task.process_event("done")
        except Exception as exc:  # noqa: BLE001
            self._fail(task, "Adoption", exc)

    def _start_rescue(self, task: task_manager.TaskManager, **_: Any) -> None:
        raise exception.InvalidParameterValue(
            err=f"Node {task.node.uuid}: hardware type {task.node.driver} has no rescue interface in Kiln; "
            "rescue and unrescue are not supported."
        )

    _start_unrescue = _start_rescue

    # --- power and management ---------------------------------------------------------------------

    def change_power_state(
        self, ctxt: dict, node_ident: str, target: str, timeout: int | None = None
    ) -> None:
        """Start moving a node to power state ``target`` (power on/off, rebooting, soft ...)."""
        with task_manager.acquire(ctxt, node_ident, purpose=f"power {target}") as task:
            supported = task.driver.power.get_supported_power_states(task)
            if target not in supported:
                raise exception.InvalidParameterValue(
                    err=f'Node {task.node.uuid}: power state "{target}" is not supported by its power '
                    f"interface; use one of {', '.join(supported)}."
                )
            task.driver.power.validate(task)
            task.update_node({"target_power_state": _stable_power(target)})
            task.spawn_after(self._do_power, task, target, timeout)

    def _do_power(self, task: task_manager.TaskManager, target: str, timeout: int | None) -> None:
        power = task.driver.power
        try:
            if target == states.REBOOT:
                power.reboot(task, timeout=timeout)
            else:
                power.set_power_state(task, target, timeout=timeout)
            task.update_node(
                {"power_state": power.get_power_state(task), "target_power_state": None, "last_error": None}
            )
        except Exception as exc:  # noqa: BLE001
            msg = f"Failed to change power state of node {task.node.uuid} to {target}: {error_text(exc)}"
            LOG.error(msg)
            task.update_node({"target_power_state": None, "last_error": msg})

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
        with task_manager.acquire(ctxt, node.uuid, purpose="port delete", load_driver=False):
            db_api.destroy_port(port.uuid)

    # --- allocations -----------------------------------------------------------------------------

    def create_allocation(self, ctxt: dict, values: dict) -> dict:
        """Record an allocation in state "allocating" and pick its node in the background."""
        values = {**values, "state": ALLOCATING, "conductor_affinity": None}
        values.setdefault("uuid", uuidutils.generate_uuid())
        alloc = db_api.create_allocation(values)
        _allocation_pool().submit(self._do_allocate, ctxt, alloc.uuid)
        return row_dicts.allocation_to_dict(alloc)

    def update_allocation(self, ctxt: dict, ident: str, values: dict) -> dict:
        """Change an allocation's name or extra; return it."""
        return row_dicts.allocation_to_dict(db_api.update_allocation(ident, values))

    def _candidates(self, alloc: Any) -> list[Any]:
        filters: dict[str, Any] = {
            "provision_state": states.AVAILABLE,
            "maintenance": False,
            "associated": False,
            "resource_class": alloc.resource_class,
        }
        if alloc.candidate_nodes:
            filters["uuid_in"] = list(alloc.candidate_nodes)
        wanted = set(alloc.traits or [])
        found = [
            n
            for n in db_api.list_nodes(filters=filters)
            if wanted <= set(n.traits)
            and not n.reservation
            and (not alloc.owner or alloc.owner in (n.owner, n.lessee))
        ]
        random.shuffle(found)
        if alloc.name:
            found.sort(key=lambda n: n.name != alloc.name)
        return found

    def _do_allocate(self, ctxt: dict, alloc_uuid: str) -> None:
        try:
            alloc = db_api.get_allocation(alloc_uuid)
            candidates = self._candidates(alloc)
            if not candidates:
                traits = f" and traits {', '.join(alloc.traits)}" if alloc.traits else ""
                restricted = " among the candidate nodes" if alloc.candidate_nodes else ""
                raise exception.KilnException(
                    f"Allocation {alloc.uuid} failed: no available node{restricted} with resource class "
                    f"{alloc.resource_class}{traits} (not in maintenance, not associated with an instance)."
                )
            for node in candidates:
                try:
                    with task_manager.acquire(
                        ctxt, node.uuid, purpose="allocation", load_driver=False, retry_attempts=1
                    ) as task:
                        fresh = task.node
                        if (
                            fresh.instance_uuid
                            or fresh.maintenance
                            or fresh.provision_state != states.AVAILABLE
                        ):
                            continue
                        task.update_node({"instance_uuid": alloc.uuid})
                        db_api.update_allocation(
                            alloc.uuid, {"node_id": fresh.id, "state": ALLOCATION_ACTIVE, "last_error": None}
                        )
                        LOG.info("Allocation %s got node %s", alloc.uuid, fresh.uuid)
                        return
                except (exception.NodeLocked, exception.NodeNotFound):
                    continue
            raise exception.KilnException(
                f"Allocation {alloc.uuid} failed: all {len(candidates)} matching nodes were taken or locked "
                "meanwhile; retry."
            )
        except Exception as exc:  # noqa: BLE001 - the error is the allocation's result
            LOG.warning("Allocation %s: %s", alloc_uuid, exc)
            try:
                db_api.update_allocation(
                    alloc_uuid, {"state": ALLOCATION_ERROR, "last_error": error_text(exc)}
                )
            except exception.NotFound:
                pass

    def destroy_allocation(self, ctxt: dict, ident: str) -> None:
        """Delete an allocation, freeing its node (refused while the node is active, unless maintenance)."""
        alloc = db_api.get_allocation(ident)
        if alloc.node_id is None:
            db_api.destroy_allocation(alloc.uuid)
            return
        node = db_api.get_node_by_id(alloc.node_id)
        with task_manager.acquire(ctxt, node.uuid, purpose="allocation removal", load_driver=False) as task:
            node = task.node
            if node.provision_state == states.ACTIVE and not node.maintenance:
                raise exception.InvalidState(
                    reason=f"cannot remove allocation {alloc.uuid} since it is associated with node "
                    f"{node.uuid} in provision state active; undeploy the node or set maintenance first"
                )
            if node.instance_uuid == alloc.uuid:
                task.update_node({"instance_uuid": None})
            db_api.destroy_allocation(alloc.uuid)


expect_kiln_errors(ApiEndpoints)


def _stable_power(target: str) -> str:
    if target in (states.SOFT_POWER_OFF, states.POWER_OFF):
        return states.POWER_OFF
    return states.POWER_ON


def _check_steps(steps: Any, name: str, node: str, required: bool) -> list[dict] | None:
    """Validate a list of {"interface", "step", "args"?} steps; InvalidParameterValue naming the bad one."""
    if steps is None:
        if required:
            raise exception.MissingParameterValue(err=f"Node {node}: {name} is required for this target.")
        return None
    if not isinstance(steps, list):
        raise exception.InvalidParameterValue(err=f"Node {node}: {name} must be a list, not {steps!r}.")
    for index, step in enumerate(steps):
        if not isinstance(step, dict) or not step.get("interface") or not step.get("step"):
            raise exception.InvalidParameterValue(
                err=f'Node {node}: {name}[{index}] must be an object with "interface" and "step", '
                f"got {step!r}."
            )
        if "args" in step and not isinstance(step["args"], dict):
            raise exception.InvalidParameterValue(err=f"Node {node}: {name}[{index}].args must be an object.")
    return steps
