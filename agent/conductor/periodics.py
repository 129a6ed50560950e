"""The conductor's periodic work: silent agents, dead conductors' locks and interrupted work.

Each function does one pass and returns what it changed; kiln-conductor (agent.conductor.service)
calls them on a timer. Node work is limited to the nodes the hash ring maps to this conductor,
so several conductors sharing a database never do the same node twice, and a dead conductor's
nodes are picked up by the survivors as soon as the ring drops it.
"""

from __future__ import annotations

import datetime
import os
import re
from typing import Any

from oslo_log import log as logging

from agent.common import exception, states
from agent.common.config import CONF
from agent.conductor import failures, hash_ring, heartbeats, node_history, servicing, task_manager
from agent.conductor.drivers import base as drivers_base
from agent.conductor.drivers import ipxe, pxe
from agent.db import api as db_api
from agent.db import heartbeats as db_heartbeats

LOG = logging.getLogger(__name__)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

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
        and not servicing.without_agent(n)
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
            node_history.record(node, messages[node.id], node_history.event_type_for(node.provision_state))
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
            _fail_interrupted(host, node, tidy=True)
    return freed


def release_own_locks(host: str) -> int:
    """On shutdown: drop the node locks ``host`` still holds, failing the work they guarded; how many.

    A node left in a state that cannot resume (deploying, cleaning, ...) moves to its failure state,
    and an unfinished power change is cleared with its reason in ``last_error``, so nothing waits
    for a conductor that is gone.
    """
    held = list(db_api.list_nodes(filters={"reserved_by_any_of": [host]}))
    count = db_api.clear_node_reservations_for_conductor(host)
    for node in held:
        why = f"conductor {host} stopped while node {node.uuid} was locked for its work"
        if node.provision_state in states.STUCK_STATES_TREATED_AS_FAIL:
            _fail_interrupted(
                host, node, f"{why} ({node.provision_state}); the operation was interrupted. Retry it."
            )
        elif node.target_power_state:
            msg = (
                f"{why}; the change to power state {node.target_power_state} may not have happened. Retry it."
            )
            db_api.update_node(node.uuid, {"target_power_state": None, "last_error": msg})
            LOG.warning(msg)
    if count:
        LOG.info("Conductor %s released %d node lock(s) it held on shutdown", host, count)
    return count


def _fail_interrupted(host: str, node: Any, message: str | None = None, tidy: bool = False) -> None:
    """Fail ``node``'s interrupted work; with ``tidy``, first undo what it set up (power, boot, token).

    A dead conductor may have left the node powered on into the agent ramdisk with its boot files
    and agent token in place: the survivor tears them down as a failure of its own would, so a
    stale agent cannot carry on and a retry starts clean.
    """
    message = message or (
        f"Conductor {node.reservation} went offline while node {node.uuid} was {node.provision_state}; "
        "the operation was interrupted. Retry it."
    )
    try:
        with task_manager.acquire(
            {}, node.uuid, purpose="take over", host=host, load_driver=tidy, retry_attempts=1
        ) as task:
            if task.node.provision_state != node.provision_state:
                return
            if tidy:
                failures.fail(task, message)
                return
            try:
                task.process_event("fail", last_error=message)
            except exception.InvalidStateRequested:
                task.update_node({"last_error": message})
            LOG.warning(message)
    except (exception.NodeLocked, exception.NodeNotFound) as exc:
        LOG.debug("Take-over of node %s skipped: %s", node.uuid, exc)
    except exception.KilnException as exc:  # its driver cannot be loaded here: fail it untidied
        if not tidy:
            raise
        LOG.warning("Node %s: cannot tidy up the interrupted work (%s); failing it as it is", node.uuid, exc)
        _fail_interrupted(host, node, f"{message} Its power and boot were not tidied up: {exc}")


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


def after_ring_change(host: str, ring: hash_ring.HashRingManager) -> bool:
    """Take over the nodes that came to this conductor, drop the files of those that left; whether any wait.

    kiln-conductor runs this at start and after the live conductors change, and again at each pass
    while it answers True (a node still locked, or not yet taken over by its new conductor): the
    query reads the other conductors' nodes too, so it does not run on every pass.
    """
    left: list[str] = []
    take_over_nodes(host, ring, left)
    return release_moved_nodes(host, ring) or bool(left)


def take_over_nodes(host: str, ring: hash_ring.HashRingManager, left: list[str] | None = None) -> list[str]:
    """Take over the nodes the ring now maps to this conductor; their UUIDs (those skipped go in ``left``).

    A node whose conductor_affinity is another conductor's (or unset) has its boot files, if any,
    in that conductor's state path: the deploy interface's take_over writes them again in ours
    (instance boot for an active node, ramdisk boot for one waiting for its agent), then the node's
    conductor_affinity becomes this conductor's id, so each node is taken over once per move.
    """
    try:
        mine = db_api.get_conductor(host).id
    except exception.ConductorNotRegistered:
        return []
    candidates = db_api.list_nodes(
        filters={
            "provision_state_in": sorted(drivers_base.TAKEOVER_STATES),
            "conductor_affinity_not": mine,
        }
    )
    taken = []
    for node in ring.nodes_for_conductor(host, candidates):
        try:
            with task_manager.acquire({}, node.uuid, purpose="takeover", host=host, retry_attempts=1) as task:
                if task.node.conductor_affinity == mine:
                    continue
                task.driver.deploy.take_over(task)
                task.update_node({"conductor_affinity": mine})
                LOG.info(
                    "Node %s (%s) taken over by conductor %s; its boot files are written here",
                    task.node.uuid,
                    task.node.provision_state,
                    host,
                )
                taken.append(task.node.uuid)
        except exception.NodeNotFound:
            continue
        except exception.NodeLocked as exc:
            LOG.debug("Take-over of node %s postponed: %s", node.uuid, exc)
            if left is not None:
                left.append(node.uuid)
        except Exception as exc:  # noqa: BLE001 - one node's broken driver must not stop the others
            LOG.warning("Take-over of node %s by conductor %s failed (retried): %s", node.uuid, host, exc)
            if left is not None:
                left.append(node.uuid)
    return taken


def release_moved_nodes(host: str, ring: hash_ring.HashRingManager) -> bool:
    """Remove this conductor's boot files of nodes another conductor has taken over; whether any wait.

    The nodes are those named in [dnsmasq]optsdir. A node the ring maps elsewhere whose
    conductor_affinity is still this conductor's (or unset) is not taken over yet: its files stay
    until it is, and the answer is True so that the caller looks again at its next pass.
    """
    optsdir = CONF.dnsmasq.optsdir
    if not optsdir or not os.path.isdir(optsdir):
        return False
    names = [entry.name for entry in os.scandir(optsdir) if _UUID.match(entry.name)]
    if not names:
        return False
    try:
        mine = db_api.get_conductor(host).id
    except exception.ConductorNotRegistered:
        return True
    pending = False
    for start in range(0, len(names), 500):
        nodes = db_api.list_nodes(filters={"uuid_in": names[start : start + 500]})
        for node in nodes:
            try:
                if ring.get_conductor_for(node) == host:
                    continue
            except exception.ConductorNotFound:
                continue
            if node.conductor_affinity in (None, mine):
                pending = True
                continue
            macs = (node.driver_internal_info or {}).get(pxe.WRITTEN_KEY) or []
            ipxe.forget_node(node.uuid, list(macs))
            LOG.info(
                "Node %s is served by conductor id %s now; its boot files here are removed",
                node.uuid,
                node.conductor_affinity,
            )
    return pending
