"""Conductors: registration, their heartbeats, and which are online (the hash ring's members)."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from agent.common import exception
from agent.db import engine as db_engine
from agent.db import exceptions as db_exc
from agent.db.models import Conductor, utcnow


def register_conductor(hostname: str, drivers: list[str], conductor_group: str = "") -> Conductor:
    """Register (or re-register) conductor ``hostname`` as online with ``drivers``; return it."""
    if not isinstance(hostname, str) or not hostname:
        raise exception.InvalidParameterValue(err=f"Invalid conductor hostname {hostname!r}.")
    values = {"online": True, "drivers": list(drivers), "conductor_group": conductor_group or ""}
    for _attempt in range(2):
        try:
            with db_engine.session(write=True) as sess:
                cond = sess.scalars(select(Conductor).where(Conductor.hostname == hostname)).one_or_none()
                if cond is None:
                    cond = Conductor(hostname=hostname, updated_at=utcnow(), **values)
                    sess.add(cond)
                else:
                    for key, value in values.items():
                        setattr(cond, key, value)
                    cond.updated_at = utcnow()
                sess.flush()
            return cond
        except IntegrityError:
            continue  # another process registered the same host at once; update its row
    raise exception.Conflict(f"Conductor {hostname} could not be registered: concurrent registrations.")


def get_conductor(hostname: str) -> Conductor:
    """Return conductor ``hostname``; ConductorNotRegistered otherwise."""
    with db_engine.session() as sess:
        cond = sess.scalars(select(Conductor).where(Conductor.hostname == hostname)).one_or_none()
    if cond is None:
        raise db_exc.ConductorNotRegistered(conductor=hostname)
    return cond


def _set_conductor(hostname: str, **values: Any) -> None:
    with db_engine.session(write=True) as sess:
        result = sess.execute(
            update(Conductor)
            .where(Conductor.hostname == hostname)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    if result.rowcount != 1:
        raise db_exc.ConductorNotRegistered(conductor=hostname)


def touch_conductor(hostname: str) -> None:
    """Record a heartbeat of conductor ``hostname`` (and mark it online)."""
    _set_conductor(hostname, online=True, updated_at=utcnow())


def unregister_conductor(hostname: str) -> None:
    """Mark conductor ``hostname`` offline (its row stays for history)."""
    _set_conductor(hostname, online=False)


def list_conductors() -> list[Conductor]:
    """Return every registered conductor, by hostname."""
    with db_engine.session() as sess:
        return list(sess.scalars(select(Conductor).order_by(Conductor.hostname)))


def get_online_conductors(timeout_s: int) -> list[Conductor]:
    """Conductors online with a heartbeat in the last ``timeout_s`` seconds, by hostname."""
    limit = utcnow() - datetime.timedelta(seconds=timeout_s)
    query = select(Conductor).where(Conductor.online.is_(True), Conductor.updated_at >= limit)
    with db_engine.session() as sess:
        return list(sess.scalars(query.order_by(Conductor.hostname)))


def get_offline_conductors(timeout_s: int) -> list[Conductor]:
    """Conductors unregistered or silent for more than ``timeout_s`` seconds, by hostname."""
    limit = utcnow() - datetime.timedelta(seconds=timeout_s)
    query = select(Conductor).where(
        Conductor.online.is_(False) | Conductor.updated_at.is_(None) | (Conductor.updated_at < limit)
    )
    with db_engine.session() as sess:
        return list(sess.scalars(query.order_by(Conductor.hostname)))
