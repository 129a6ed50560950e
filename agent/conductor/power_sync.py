"""The power state sync (Ironic's _sync_power_states): the BMC's power state and health, read periodically.

Every [conductor]sync_power_state_interval seconds the conductor reads, for each of its nodes that is
not locked, not in maintenance and in a state where nothing else drives its power (not enroll,
not a transient or wait state), the power state its BMC reports, and stores it when it differs
from the database's (Kiln records what the BMC says; it never forces the old state back). With
[conductor]enable_health_monitoring it also stores the BMC's hardware health (``health``, 1.109;
None where the driver reports none).

After [conductor]power_state_sync_max_retries consecutive failed reads a node goes into maintenance
with fault "power failure" and the error as its reason, recorded in its history (event type
``monitoring``). Such nodes are read again at each pass: the first successful read takes them out
of maintenance (a history event says so).
"""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging

from agent.common import exception, states
from agent.common.config import CONF
from agent.common.utils import error_text
from agent.conductor import hash_ring, node_history, task_manager
from agent.db import api as db_api
from agent.db import history as db_history

LOG = logging.getLogger(__name__)

POWER_FAILURE = "power failure"

#: Provision states whose nodes the sync reads: nothing else is driving their power then.
SYNC_STATES = (
    states.MANAGEABLE,
    states.AVAILABLE,
    states.ACTIVE,
    states.ERROR,
    states.RESCUE,
    states.DEPLOYFAIL,
    states.CLEANFAIL,
    states.INSPECTFAIL,
    states.ADOPTFAIL,
    states.RESCUEFAIL,
    states.UNRESCUEFAIL,
    states.SERVICEFAIL,
)

#: Consecutive failed reads per node UUID (this conductor's; reset by a successful read).
_failures: dict[str, int] = {}


def _candidates(host: str, ring: hash_ring.HashRingManager) -> tuple[list[Any], list[Any]]:
    nodes = db_api.list_nodes(filters={"provision_state_in": list(SYNC_STATES), "reserved": False})
    mine = ring.nodes_for_conductor(host, nodes)
    plain = [n for n in mine if not n.maintenance and not n.target_power_state]
    faulted = [n for n in mine if n.maintenance and n.fault == POWER_FAILURE]
    return plain, faulted


def _read(task) -> tuple[str, str | None]:
    power = task.driver.power.get_power_state(task)
    health = None
    if CONF.conductor.enable_health_monitoring:
        health = task.driver.management.get_node_health(task)
    return power, health


def _sync_one(host: str, node: Any) -> str | None:
    """Read one node's power and health; the change made ("power", "maintenance", "recovered") or None."""
    try:
        with task_manager.acquire(
            {}, node.uuid, shared=True, purpose="power state sync", host=host, retry_attempts=1
        ) as task:
            if task.node.target_power_state or task.node.provision_state not in SYNC_STATES:
                return None
            faulted = task.node.maintenance and task.node.fault == POWER_FAILURE
            if task.node.maintenance and not faulted:
                return None
            try:
                power, health = _read(task)
            except Exception as exc:  # noqa: BLE001 - any read failure counts against the node
                return _failed(task, exc, faulted)
            _failures.pop(task.node.uuid, None)
            values: dict[str, Any] = {}
            if power != task.node.power_state and power != states.ERROR:
                LOG.warning(
                    "Node %s: power state in the database is %s, the BMC reports %s; updated",
                    task.node.uuid,
                    task.node.power_state,
                    power,
                )
                values["power_state"] = power
            if CONF.conductor.enable_health_monitoring and health != task.node.health:
                values["health"] = health
            if faulted:
                values.update(maintenance=False, maintenance_reason=None, fault=None)
            if values:
                task.upgrade_lock("power state sync update")
                task.update_node(values)
            if faulted:
                message = f"Power state read from the BMC again ({power}); maintenance cleared."
                LOG.info("Node %s: %s", task.node.uuid, message)
                node_history.record(task.node, message, node_history.MONITORING, db_history.INFO, host=host)
                return "recovered"
            return "power" if "power_state" in values else None
    except (exception.NodeLocked, exception.NodeNotFound):
        return None


def _failed(task, exc: BaseException, faulted: bool) -> str | None:
    """Count a failed read; at the limit, put the node in maintenance (the task's lock upgraded)."""
    node = task.node
    if faulted:
        LOG.debug("Node %s: power state still unreadable: %s", node.uuid, error_text(exc))
        return None
    count = _failures.get(node.uuid, 0) + 1
    _failures[node.uuid] = count
    limit = CONF.conductor.power_state_sync_max_retries
    LOG.warning(
        "Node %s: power state sync could not read the BMC (%d/%d): %s",
        node.uuid,
        count,
        limit,
        error_text(exc),
    )
    if count < limit:
        return None
    _failures.pop(node.uuid, None)
    task.upgrade_lock("power state sync: maintenance")
    reason = (
        f"During sync_power_state, {count} consecutive power state reads of node {node.uuid} failed; "
        f"node put in maintenance. Last error: {error_text(exc)}"
    )
    task.update_node({"maintenance": True, "maintenance_reason": reason, "fault": POWER_FAILURE})
    node_history.record(task.node, reason, node_history.MONITORING, db_history.ERROR, host=task.host)
    LOG.error("Node %s: %s", node.uuid, reason)
    return "maintenance"


def sync_power_states(host: str, ring: hash_ring.HashRingManager) -> dict[str, str]:
    """One pass over this conductor's nodes; {node uuid: change} for the nodes it changed."""
    plain, faulted = _candidates(host, ring)
    changed = {}
    for node in plain + faulted:
        try:
            change = _sync_one(host, node)
        except Exception as exc:  # noqa: BLE001 - one node's broken driver must not stop the others
            LOG.warning("Power state sync of node %s failed: %s", node.uuid, error_text(exc))
            continue
        if change:
            changed[node.uuid] = change
    return changed
