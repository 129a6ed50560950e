"""The conductor's writes to a node's history (Ironic's node_history_record): errors, faults, recoveries.

An event names its kind as Ironic does: the operation the node was in when it failed (deploying,
cleaning, servicing, rescuing, inspecting, else provisioning), or ``monitoring`` for what the power
sync finds. Recording never fails the caller: a database error is logged.
"""

from __future__ import annotations

import datetime
from typing import Any

from oslo_log import log as logging

from agent.common import states
from agent.common.config import CONF
from agent.db import history as db_history

LOG = logging.getLogger(__name__)

MONITORING = "monitoring"
PROVISIONING = "provisioning"

_BY_STATE = (
    ("deploy", "deploying"),
    ("clean", "cleaning"),
    ("servic", "servicing"),
    ("rescu", "rescuing"),
    ("inspect", "inspecting"),
)


def event_type_for(provision_state: str | None) -> str:
    """The history event type of a failure in ``provision_state``."""
    state = provision_state or ""
    if state == states.DEPLOYWAIT:  # "wait call-back"
        return "deploying"
    for part, kind in _BY_STATE:
        if part in state:
            return kind
    return PROVISIONING


def _of(context: Any, key: str) -> str | None:
    if isinstance(context, dict):
        return context.get(key) or None
    return getattr(context, key, None)


def _where(node: Any) -> dict[str, Any]:
    """The node's provision state, its target and the whole seconds it has been in that state."""
    since = getattr(node, "provision_updated_at", None)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=datetime.UTC)
    return {
        "state": node.provision_state,
        "target_provision_state": node.target_provision_state,
        "duration_seconds": (
            int((datetime.datetime.now(datetime.UTC) - since).total_seconds()) if since else None
        ),
    }


def record(
    node: Any,
    event: str,
    event_type: str,
    severity: str = db_history.ERROR,
    context: Any = None,
    host: str | None = None,
    before: Any = None,
) -> None:
    """Add ``event`` to ``node``'s history (logged, not raised, when it cannot be stored).

    The event records the provision state (and target, and time spent in it) of ``before`` (the
    node as it was when the event happened; default ``node``).
    """
    try:
        db_history.record_event(
            node.id,
            event,
            event_type,
            severity=severity,
            conductor=host or CONF.conductor.host,
            user=_of(context, "user_id"),
            project=_of(context, "project_id"),
            **_where(before if before is not None else node),
        )
    except Exception as exc:  # noqa: BLE001 - history is a record; it must not fail the work
        LOG.warning("Node %s: could not record history event %r: %s", node.uuid, event, exc)
