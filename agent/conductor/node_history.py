"""The conductor's writes to a node's history (Ironic's node_history_record): errors, faults, recoveries.

An event names its kind as Ironic does: the operation the node was in when it failed (deploying,
cleaning, servicing, rescuing, inspecting, else provisioning), or ``monitoring`` for what the power
sync finds. Recording never fails the caller: a database error is logged.
"""

from __future__ import annotations

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


def _user(context: Any) -> str | None:
    if isinstance(context, dict):
        return context.get("user_id") or None
    return getattr(context, "user_id", None)


def record(
    node: Any,
    event: str,
    event_type: str,
    severity: str = db_history.ERROR,
    context: Any = None,
    host: str | None = None,
) -> None:
    """Add ``event`` to ``node``'s history (logged, not raised, when it cannot be stored)."""
    try:
        db_history.record_event(
            node.id,
            event,
            event_type,
            severity=severity,
            conductor=host or CONF.conductor.host,
            user=_user(context),
        )
    except Exception as exc:  # noqa: BLE001 - history is a record; it must not fail the work
        LOG.warning("Node %s: could not record history event %r: %s", node.uuid, event, exc)
