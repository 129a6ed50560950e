"""A node's history events (Ironic's node_history): errors, faults and recoveries the conductor records.

Each node keeps at most [conductor]node_history_max_entries events (the oldest go first); with
[conductor]node_history false nothing is recorded.
"""

from __future__ import annotations

from typing import Any

from oslo_utils import uuidutils
from sqlalchemy import delete, select

from agent.common.config import CONF
from agent.db import engine as db_engine
from agent.db.models import NodeHistory

INFO = "INFO"
ERROR = "ERROR"
WARNING = "WARNING"


def record_event(
    node_id: int,
    event: str,
    event_type: str,
    severity: str = INFO,
    conductor: str | None = None,
    user: str | None = None,
    **where: Any,
) -> str | None:
    """Store one event for node ``node_id`` and drop those past the per-node limit; its uuid (None: off).

    ``where``: project, state, target_provision_state, duration_seconds (the 1.115 fields).
    """
    if not CONF.conductor.node_history:
        return None
    uuid = uuidutils.generate_uuid()
    keep = CONF.conductor.node_history_max_entries
    with db_engine.session(write=True) as sess:
        sess.add(
            NodeHistory(
                uuid=uuid,
                node_id=node_id,
                event=event,
                event_type=event_type,
                severity=severity,
                conductor=conductor,
                user=user,
                **where,
            )
        )
        sess.flush()
        if keep:
            newest = (
                select(NodeHistory.id)
                .where(NodeHistory.node_id == node_id)
                .order_by(NodeHistory.id.desc())
                .offset(keep)
                .limit(1)
            )
            cut = sess.scalar(newest)
            if cut is not None:
                sess.execute(delete(NodeHistory).where(NodeHistory.node_id == node_id, NodeHistory.id <= cut))
    return uuid


def list_events(node_id: int) -> list[dict[str, Any]]:
    """The node's events, oldest first, as dicts of the table's columns."""
    query = select(NodeHistory).where(NodeHistory.node_id == node_id).order_by(NodeHistory.id)
    with db_engine.session() as sess:
        return [row.as_dict() for row in sess.scalars(query)]


def get_event(node_id: int, uuid: str) -> dict[str, Any] | None:
    """One event of the node by uuid, or None."""
    query = select(NodeHistory).where(NodeHistory.node_id == node_id, NodeHistory.uuid == uuid)
    with db_engine.session() as sess:
        row = sess.scalar(query)
        return row.as_dict() if row is not None else None
