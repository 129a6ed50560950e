"""Inspection rules: conditions on an inventory and actions on its node, applied by priority."""

from __future__ import annotations

from sqlalchemy import select

from agent.common import exception
from agent.db import engine as db_engine
from agent.db.models import InspectionRule
from agent.db.records import Store

STORE = Store(
    InspectionRule,
    "inspection rule",
    "inspection_rules",
    lambda ident: exception.InspectionRuleNotFound(rule=ident),
)


def rules_by_priority(phase: str = "main") -> list[InspectionRule]:
    """The rules of ``phase``, highest priority first (then oldest first)."""
    with db_engine.session() as sess:
        query = (
            select(InspectionRule)
            .where(InspectionRule.phase == phase)
            .order_by(InspectionRule.priority.desc(), InspectionRule.id)
        )
        return list(sess.scalars(query))
