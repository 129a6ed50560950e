"""The conductor's periodic work: silent agents, dead conductors' locks and interrupted work.

Each function does one pass and returns what it changed; kiln-conductor (agent.conductor.service)
calls them on a timer. Node work is limited to the nodes the hash ring maps to this conductor,
so several conductors sharing a database never do the same node twice, and a dead conductor's
nodes are picked up by the survivors as soon as the ring drops it.
"""

from __future__ import annotations

import datetime
from typing import Any

from oslo_log import log as logging

from agent.common import exception, states
from agent.common.config import CONF
from agent.conductor import hash_ring, heartbeats, task_manager
from agent.db import api as db_api
from agent.db import heartbeats as db_heartbeats

LOG = logging.getLogger(__name__)

#: Provision states in which kiln-agent runs on the node and must heartbeat. A node in "enroll"
#: counts only once its agent has heartbeated (an operator-enrolled node may have no agent yet).
AGENT_STATES = (
    states.ENROLL,
    states.INSPECTWAIT,
    states.DEPLOYWAIT,
    states.CLEANWAIT,
    states.RESCUEWAIT,
    states.SERVICEWAIT,
    states.DEPLOYHOLD,
    states.CLEANHOLD,
    states.SERVICEHOLD,
)


def _aware(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value


def flag_missing_heartbeats(
    host: str, ring: hash_ring.HashRingManager, timeout_s: int | None = None
) -> list[str]:
    """Set fault "agent heartbeat timeout" (and last_error) on this conductor's silent nodes; their UUIDs."""
    timeout = timeout_s or CONF.conductor.agent_heartbeat_timeout
    candidates = [
        n
        for n in db_api.get_nodes_missing_heartbeat(timeout, list(AGENT_STATES))
        if not n.maintenance
        and n.fault != heartbeats.HEARTBEAT_FAULT
        and not (n.provision_state == states.ENROLL and n.last_heartbeat_at is None)
    ]
    mine = ring.nodes_for_conductor(host, candidates)
    messages = {n.id: heartbeats.heartbeat_error(n.uuid, timeout, _aware(n.last_heartbeat_at)) for n in mine}
    # One transaction, each UPDATE conditional on the node being unlocked and still silent (a
    # node a task holds is skipped, as it was when its lock could not be taken).
    flagged_ids = set(db_heartbeats.flag_silent_nodes(messages, heartbeats.HEARTBEAT_FAULT, timeout))
    flagged = [n.uuid for n in mine if n.id in flagged_ids]
    heartbeats.forget_nodes(flagged)
    for node in mine:
        if node.id in flagged_ids:
            LOG.warning("Node %s (%s): %s", node.uuid, node.provision_state, messages[node.id])
    return flagged


def release_dead_conductors(host: str, ring: hash_ring.HashRingManager) -> dict[str, int]:
    """Drop the node locks of conductors that stopped heartbeating; fail the work they left unfinished.

    A node that a dead conductor held in a state that cannot resume (deploying, cleaning, ...) is
    moved to its failure state, if the ring maps it to this conductor. Returns {dead host: locks freed}.
    """
    dead = [
        c.hostname
        for c in db_api.get_offline_conductors(CONF.conductor.heartbeat_timeout)
        if c.hostname != host
    ]
    if not dead:
        return {}
    reserved = [
        n
        for n in db_api.list_nodes(filters={"reserved": True})
        if n.reservation in dead and n.provision_state in states.STUCK_STATES_TREATED_AS_FAIL
    ]
    freed: dict[str, int] = {}
    for hostname in dead:
        count = db_api.clear_node_reservations_for_conductor(hostname)
        if count:
            LOG.warning("Conductor %s is gone; released %d node lock(s) it held", hostname, count)
            freed[hostname] = count
    if reserved:
        ring.reset()
        for node in ring.nodes_for_conductor(host, reserved):
            _fail_interrupted(host, node)
    return freed


def _fail_interrupted(host: str, node: Any) -> None:
    message = (
        f"Conductor {node.reservation} went offline while node {node.uuid} was {node.provision_state}; "
        "the operation was interrupted. Retry it."
    )
    try:
        with task_manager.acquire(
            {}, node.uuid, purpose="take over", host=host, load_driver=False, retry_attempts=1
        ) as task:
            if task.node.provision_state != node.provision_state:
                return
            try:
                task.process_event("fail", last_error=message)
            except exception.InvalidStateRequested:
                task.update_node({"last_error": message})
            LOG.warning(message)
    except (exception.NodeLocked, exception.NodeNotFound) as exc:
        LOG.debug("Take-over of node %s skipped: %s", node.uuid, exc)


def refresh_ring(ring: hash_ring.HashRingManager, known: frozenset[str] | None) -> frozenset[str]:
    """Rebuild ``ring`` at once when the set of live conductors differs from ``known``; return the new set."""
    live = frozenset(c.hostname for c in db_api.get_online_conductors(CONF.conductor.heartbeat_timeout))
    if known is not None and live != known:
        LOG.info(
            "Live conductors changed: %s (gone: %s; new: %s); the hash ring is rebuilt",
            ", ".join(sorted(live)) or "none",
            ", ".join(sorted(known - live)) or "none",
            ", ".join(sorted(live - known)) or "none",
        )
        ring.reset()
    return live
