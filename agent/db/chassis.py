"""Chassis: groups of nodes. A chassis holding nodes cannot be deleted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.common import exception
from agent.db import engine as db_engine
from agent.db.models import Chassis, Node
from agent.db.records import Store

STORE = Store(Chassis, "chassis", "chassis", lambda ident: exception.ChassisNotFound(chassis=ident))


def _empty(sess: Session, row: Chassis) -> None:
    if sess.scalar(select(func.count()).select_from(Node).where(Node.chassis_id == row.id)):
        raise exception.ChassisNotEmpty(chassis=row.uuid)


def destroy_chassis(ident: str) -> None:
    """Delete a chassis that holds no nodes; ChassisNotEmpty otherwise."""
    STORE.destroy(ident, _empty)


def chassis_uuids(ids: list[int | None]) -> dict[int, str]:
    """Map chassis database ids to UUIDs."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    with db_engine.session() as sess:
        return dict(sess.execute(select(Chassis.id, Chassis.uuid).where(Chassis.id.in_(wanted))).all())


def chassis_id(ident: Any) -> int:
    """The database id of the chassis with UUID ``ident``; ChassisNotFound otherwise."""
    return STORE.get(ident).id
