"""Alembic migrations of Kiln's schema (run them with ``kiln-dbsync upgrade``)."""
