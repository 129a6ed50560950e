"""Deploy templates: named (by a trait) lists of deploy steps; the ones an instance's traits select."""

from __future__ import annotations

from sqlalchemy import select

from agent.common import exception
from agent.db import engine as db_engine
from agent.db.models import DeployTemplate
from agent.db.records import Store

STORE = Store(
    DeployTemplate,
    "deploy template",
    "deploy_templates",
    lambda ident: exception.DeployTemplateNotFound(template=ident),
    unique=("uuid", "name"),
)


def templates_for_traits(traits: list[str]) -> list[DeployTemplate]:
    """The deploy templates named by any of ``traits``, by name."""
    if not traits:
        return []
    with db_engine.session() as sess:
        query = (
            select(DeployTemplate).where(DeployTemplate.name.in_(list(traits))).order_by(DeployTemplate.name)
        )
        return list(sess.scalars(query))
