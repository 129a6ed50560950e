"""Schema migrations with alembic: upgrade, current version, new revisions, and a model/schema diff."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from agent.db import engine as db_engine
from agent.db import models

SCRIPT_LOCATION = "agent.db:migrations"


def _config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if engine is not None:
        # Alembic's ini interpolation treats % specially; escape it in passwords.
        cfg.set_main_option(
            "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
    return cfg


def _engine(engine: Engine | None) -> Engine:
    return engine if engine is not None else db_engine.get_engine()


def upgrade(revision: str = "head", engine: Engine | None = None) -> None:
    """Create or upgrade the schema to ``revision`` (idempotent: at head it does nothing)."""
    engine = _engine(engine)
    cfg = _config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(revision: str, engine: Engine | None = None) -> None:
    """Downgrade the schema to ``revision`` ("base" drops every table)."""
    engine = _engine(engine)
    cfg = _config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def version(engine: Engine | None = None) -> str | None:
    """Return the schema revision the database is at, or None when it has none yet."""
    with _engine(engine).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    """Return the newest revision this code knows."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def revision(message: str, autogenerate: bool = False, engine: Engine | None = None) -> Any:
    """Write a new revision script (compared against ``engine``'s schema when autogenerating)."""
    engine = _engine(engine) if autogenerate else engine
    cfg = _config(engine)
    if not autogenerate:
        return command.revision(cfg, message=message)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        return command.revision(cfg, message=message, autogenerate=True)


def schema_diff(engine: Engine | None = None) -> list:
    """Return alembic's autogenerate differences between the models and the database (empty: same)."""
    with _engine(engine).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        return compare_metadata(ctx, models.Base.metadata)
