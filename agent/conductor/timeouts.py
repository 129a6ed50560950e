"""Callback timeouts: nodes whose agent has been silent too long in a wait state fail.

Run by the conductor's periodic tasks.
"""

from __future__ import annotations

import datetime
from typing import Any

from agent.common import exception, states
from agent.common.config import CONF
from agent.common.utils import utcnow
from agent.conductor import agent_commands, failures, rescue
from agent.db import api as db_api

# Wait state -> (group, option) of its callback timeout; any other wait state: inspect_wait_timeout.
_TIMEOUT_OPTIONS = {
    states.DEPLOYWAIT: ("conductor", "deploy_callback_timeout"),
    states.CLEANWAIT: ("deploy", "clean_callback_timeout"),
    states.SERVICEWAIT: ("conductor", "service_callback_timeout"),
    states.RESCUEWAIT: ("conductor", "rescue_callback_timeout"),
}


def _timeout_for(state: str) -> int:
    group, name = _TIMEOUT_OPTIONS.get(state, ("deploy", "inspect_wait_timeout"))
    return getattr(getattr(CONF, group), name)


def _as_utc(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value


def last_sign_of_life(node: Any) -> datetime.datetime | None:
    """When the node last moved state or its agent last heartbeated, whichever is later."""
    times = [t for t in (_as_utc(node.provision_updated_at), _as_utc(node.last_heartbeat_at)) if t]
    return max(times) if times else None


def check_callback_timeouts(
    host: str | None = None, now: datetime.datetime | None = None, ring: Any = None
) -> list[str]:
    """Fail nodes whose agent has been silent too long in a wait state; return their UUIDs.

    deploy: [conductor]deploy_callback_timeout; clean: [deploy]clean_callback_timeout; service and
    rescue: [conductor]service_callback_timeout and rescue_callback_timeout; inspect:
    [deploy]inspect_wait_timeout. With ``host``, only the nodes the hash ring (``ring``, default the
    process-wide one) maps to that conductor are checked. Meant for the conductor's periodic tasks.
    """
    from agent.conductor import task_manager

    now = now or utcnow()
    nodes = db_api.list_nodes(
        filters={"provision_state_in": list(states.AGENT_WAIT_STATES), "reserved": False}
    )
    if host is not None and nodes:
        if ring is None:
            from agent.conductor import hash_ring

            ring = hash_ring.default_manager()
        nodes = ring.nodes_for_conductor(host, nodes)
    failed: list[str] = []
    for node in nodes:
        limit = _timeout_for(node.provision_state)
        seen = last_sign_of_life(node)
        if not limit or seen is None or (now - seen).total_seconds() <= limit:
            continue
        try:
            with task_manager.acquire(
                {},
                node.uuid,
                purpose="callback timeout",
                retry_attempts=1,
                **({"host": host} if host else {}),
            ) as task:
                state = task.node.provision_state
                seen = last_sign_of_life(task.node)
                if (
                    state not in states.AGENT_WAIT_STATES
                    or seen is None
                    or (now - seen).total_seconds() <= limit
                ):
                    continue
                command = agent_commands.pending_command(task)
                doing = f" while the agent ran {command['step']}" if command else ""
                fail = rescue.fail if state == states.RESCUEWAIT else failures.fail
                fail(
                    task,
                    f"Timeout reached while waiting for a callback from the agent of node {task.node.uuid} "
                    f"in state {state}{doing}: no heartbeat for more than {limit} s "
                    f"({_timeout_option(state)}). Check that the node boots the agent over PXE and that "
                    "the agent reaches the message bus.",
                )
                failed.append(task.node.uuid)
        except (exception.NodeLocked, exception.NodeNotFound):
            continue
    return failed


def _timeout_option(state: str) -> str:
    group, name = _TIMEOUT_OPTIONS.get(state, ("deploy", "inspect_wait_timeout"))
    return f"[{group}]{name}"
