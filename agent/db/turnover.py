"""Turnover records: the signed evidence of each cleaning, by node UUID (kept after the node)."""

from __future__ import annotations

from sqlalchemy import select

from agent.common import exception
from agent.db import engine as db_engine
from agent.db.common import add_row
from agent.db.models import TurnoverRecord


def create_turnover_record(
    uuid: str, node_uuid: str, record: str, signature: str, key_id: str
) -> TurnoverRecord:
    """Store a signed record (``record`` the exact signed text); return the row."""
    row = TurnoverRecord(uuid=uuid, node_uuid=node_uuid, record=record, signature=signature, key_id=key_id)
    with db_engine.session(write=True) as sess:
        return add_row(sess, row, "turnover_records", {})


def list_turnover_records(node_uuid: str) -> list[TurnoverRecord]:
    """The node's records, oldest first."""
    query = select(TurnoverRecord).where(TurnoverRecord.node_uuid == node_uuid).order_by(TurnoverRecord.id)
    with db_engine.session() as sess:
        return list(sess.scalars(query))


def get_turnover_record(node_uuid: str, uuid: str) -> TurnoverRecord:
    """One record of the node; TurnoverRecordNotFound otherwise."""
    query = select(TurnoverRecord).where(TurnoverRecord.uuid == uuid, TurnoverRecord.node_uuid == node_uuid)
    with db_engine.session() as sess:
        row = sess.scalars(query).one_or_none()
    if row is None:
        raise exception.TurnoverRecordNotFound(record=uuid)
    return row
