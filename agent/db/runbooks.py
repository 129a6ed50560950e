"""Runbooks: named step lists (with traits that say which nodes they may run on)."""

from __future__ import annotations

from agent.common import exception
from agent.db.models import Runbook
from agent.db.records import Store

STORE = Store(
    Runbook,
    "runbook",
    "runbooks",
    lambda ident: exception.RunbookNotFound(runbook=ident),
    unique=("uuid", "name"),
)
