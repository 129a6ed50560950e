"""Allocations: pick an available node by resource class, traits and owner, in the background.

A node in maintenance, or carrying CUSTOM_GPU_QUARANTINE (it failed the GPU acceptance gate), is
never picked.
"""

from __future__ import annotations

import concurrent.futures
import random
import threading
from typing import Any

from oslo_log import log as logging
from oslo_utils import uuidutils

from agent.common import exception, row_dicts, states
from agent.common.utils import error_text
from agent.conductor import gpu_acceptance, task_manager
from agent.db import api as db_api

LOG = logging.getLogger(__name__)

ALLOCATING = "allocating"
ALLOCATION_ACTIVE = "active"
ALLOCATION_ERROR = "error"

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _allocation_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="kiln-alloc")
        return _pool


def create_allocation(ctxt: dict, values: dict) -> dict:
    """Record an allocation in state "allocating" and pick its node in the background; return it."""
    values = {**values, "state": ALLOCATING, "conductor_affinity": None}
    values["uuid"] = values.get("uuid") or uuidutils.generate_uuid()  # null: generated, as Ironic does
    alloc = db_api.create_allocation(values)
    _allocation_pool().submit(do_allocate, ctxt, alloc.uuid)
    return row_dicts.allocation_to_dict(alloc)


def candidates(alloc: Any) -> list[Any]:
    """Available, unreserved nodes that match the allocation, the named one first, else shuffled."""
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
        and gpu_acceptance.TRAIT_QUARANTINE not in n.traits
        and not n.reservation
        and (not alloc.owner or alloc.owner in (n.owner, n.lessee))
    ]
    random.shuffle(found)
    if alloc.name:
        found.sort(key=lambda n: n.name != alloc.name)
    return found


def do_allocate(ctxt: dict, alloc_uuid: str) -> None:
    """Give the allocation the first candidate that is still free under its lock, or record why not."""
    try:
        alloc = db_api.get_allocation(alloc_uuid)
        found = candidates(alloc)
        if not found:
            traits = f" and traits {', '.join(alloc.traits)}" if alloc.traits else ""
            restricted = " among the candidate nodes" if alloc.candidate_nodes else ""
            raise exception.KilnException(
                f"Allocation {alloc.uuid} failed: no available node{restricted} with resource class "
                f"{alloc.resource_class}{traits} (not in maintenance, not GPU-quarantined, not "
                "associated with an instance)."
            )
        for node in found:
            if _try_node(ctxt, alloc, node):
                return
        raise exception.KilnException(
            f"Allocation {alloc.uuid} failed: all {len(found)} matching nodes were taken or locked "
            "meanwhile; retry."
        )
    except Exception as exc:  # noqa: BLE001 - the error is the allocation's result
        LOG.warning("Allocation %s: %s", alloc_uuid, exc)
        try:
            db_api.update_allocation(alloc_uuid, {"state": ALLOCATION_ERROR, "last_error": error_text(exc)})
        except exception.NotFound:
            pass


def _try_node(ctxt: dict, alloc: Any, node: Any) -> bool:
    try:
        with task_manager.acquire(
            ctxt, node.uuid, purpose="allocation", load_driver=False, retry_attempts=1
        ) as task:
            fresh = task.node
            if (
                fresh.instance_uuid
                or fresh.maintenance
                or fresh.provision_state != states.AVAILABLE
                or gpu_acceptance.TRAIT_QUARANTINE in fresh.traits
            ):
                return False
            task.update_node({"instance_uuid": alloc.uuid})
            db_api.update_allocation(
                alloc.uuid, {"node_id": fresh.id, "state": ALLOCATION_ACTIVE, "last_error": None}
            )
            LOG.info("Allocation %s got node %s", alloc.uuid, fresh.uuid)
            return True
    except (exception.NodeLocked, exception.NodeNotFound):
        return False


def destroy_allocation(ctxt: dict, ident: str) -> None:
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
