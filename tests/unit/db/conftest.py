"""Fixtures of the database tests on SQLite: a fresh schema in a temporary file per test."""

from __future__ import annotations

import pytest

from agent.db import api, migration


@pytest.fixture
def db_url(tmp_path) -> str:
    """URL of an empty SQLite file."""
    return f"sqlite:///{tmp_path}/kiln.sqlite"


@pytest.fixture
def empty_db_url(tmp_path) -> str:
    """URL of a second, empty SQLite database (for migration tests)."""
    return f"sqlite:///{tmp_path}/empty.sqlite"


@pytest.fixture
def db(db_url):
    """Configure the API on ``db_url`` with the schema at head."""
    engine = api.configure(db_url)
    migration.upgrade()
    yield engine
    api.dispose()
