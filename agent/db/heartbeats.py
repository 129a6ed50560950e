"""Agents' heartbeats: the batched write, the light token check, and the nodes gone silent.

The conductor's hottest queries: each is one statement (or one per chunk), built to read or
write only the columns it needs.
"""

from __future__ import annotations

import datetime
from typing import Any

from oslo_utils import uuidutils
from sqlalchemy import select, update

from agent.common import exception
from agent.db import engine as db_engine
from agent.db.common import ident_where
from agent.db.models import Node, utcnow

#: Most nodes one heartbeat UPDATE names (a CASE arm and an IN entry each).
HEARTBEAT_CHUNK = 400


def record_agent_heartbeat(node_id: int | str, at: datetime.datetime | None = None) -> None:
    """Record a heartbeat from the node's agent at ``at`` (default now); updated_at is left alone."""
    with db_engine.session(write=True) as sess:
        where = ident_where(node_id)
        result = sess.execute(
            update(Node)
            .where(where)
            .values(last_heartbeat_at=at or utcnow(), updated_at=Node.updated_at)
            .execution_options(synchronize_session=False)
        )
    if result.rowcount != 1:
        raise exception.NodeNotFound(node=node_id)


def get_nodes_missing_heartbeat(timeout_s: int, states: list[str] | None = None) -> list[Node]:
    """Nodes (in ``states``, if given) with no heartbeat, nor state change, for ``timeout_s`` seconds."""
    limit = utcnow() - datetime.timedelta(seconds=timeout_s)
    query = select(Node).where(
        (Node.last_heartbeat_at.is_(None) | (Node.last_heartbeat_at < limit)),
        (Node.provision_updated_at.is_(None) | (Node.provision_updated_at < limit)),
    )
    if states is not None:
        query = query.where(Node.provision_state.in_(list(states)))
    with db_engine.session() as sess:
        return list(sess.scalars(query.order_by(Node.id)))


def record_agent_heartbeats(items: dict[int, datetime.datetime]) -> list[int]:
    """Record many agents' heartbeats ({node id: time}) in one transaction; return the ids of missing nodes.

    As record_agent_heartbeat, updated_at is left alone. Nodes that share a time (the conductor
    notes heartbeats to the second) are set by one UPDATE ... WHERE id IN (chunk).
    """
    by_time: dict[datetime.datetime, list[int]] = {}
    for node_id, at in sorted(items.items()):
        if not isinstance(node_id, int) or isinstance(node_id, bool) or not isinstance(at, datetime.datetime):
            raise exception.InvalidParameterValue(
                err=f"Heartbeat of node {node_id!r} at {at!r}: expected an integer node id and a datetime."
            )
        by_time.setdefault(at, []).append(node_id)
    missing: list[int] = []
    with db_engine.session(write=True) as sess:
        for at, ids in sorted(by_time.items()):
            for start in range(0, len(ids), HEARTBEAT_CHUNK):
                chunk = ids[start : start + HEARTBEAT_CHUNK]
                result = sess.execute(
                    update(Node)
                    .where(Node.id.in_(chunk))
                    .values(last_heartbeat_at=at, updated_at=Node.updated_at)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != len(chunk):
                    found = set(sess.scalars(select(Node.id).where(Node.id.in_(chunk))))
                    missing.extend(i for i in chunk if i not in found)
    return sorted(missing)


def get_node_agent_auth(node_uuid: str) -> dict[str, Any] | None:
    """What checking an agent's message needs of node ``node_uuid``, in one light query; None if absent.

    {"id", "uuid", "agent_token_hash", "provision_state", "fault", "updated_at"}.
    """
    if not isinstance(node_uuid, str) or not uuidutils.is_uuid_like(node_uuid):
        return None
    columns = (Node.id, Node.uuid, Node.agent_token_hash, Node.provision_state, Node.fault, Node.updated_at)
    with db_engine.session() as sess:
        row = sess.execute(select(*columns).where(Node.uuid == node_uuid.lower())).one_or_none()
    return None if row is None else dict(row._mapping)


def list_nodes_updated_since(since: datetime.datetime) -> dict[str, datetime.datetime | None]:
    """{uuid: updated_at} of the nodes whose updated_at is ``since`` or later."""
    with db_engine.session() as sess:
        rows = sess.execute(select(Node.uuid, Node.updated_at).where(Node.updated_at >= since))
        return {uuid: updated for uuid, updated in rows}


def flag_silent_nodes(messages: dict[int, str], fault: str, timeout_s: int) -> list[int]:
    """Set ``fault`` and last_error ``messages[id]`` on each node still silent, unlocked and unflagged.

    One transaction for all of them (the periodic pass once took a lock, a read and a write per
    node: seconds for fifty nodes while agents report). A node is left alone when a conductor holds
    its lock, it is in maintenance, it has the fault already, or it heartbeated or changed
    state within ``timeout_s``: each is a condition of its UPDATE, so nothing changed meanwhile
    is overwritten. Returns the ids of the nodes flagged.
    """
    limit = utcnow() - datetime.timedelta(seconds=timeout_s)
    flagged: list[int] = []
    with db_engine.session(write=True) as sess:
        for node_id, message in sorted(messages.items()):
            result = sess.execute(
                update(Node)
                .where(
                    Node.id == node_id,
                    Node.reservation.is_(None),
                    Node.maintenance.is_(False),
                    Node.fault.is_(None) | (Node.fault != fault),
                    Node.last_heartbeat_at.is_(None) | (Node.last_heartbeat_at < limit),
                    Node.provision_updated_at.is_(None) | (Node.provision_updated_at < limit),
                )
                .values(fault=fault, last_error=message)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount:
                flagged.append(node_id)
    return flagged
