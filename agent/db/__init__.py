"""Kiln's database: SQLAlchemy models, queries (``agent.db.api``) and alembic migrations."""
