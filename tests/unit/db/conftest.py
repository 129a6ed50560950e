"""Fixtures of the database tests on SQLite: a fresh schema in a temporary file per test."""

from __future__ import annotations

import pytest

from agent.db import api
from tests.unit.schema import migrated_db


@pytest.fixture
def db_url(tmp_path) -> str:
    """URL of an empty SQLite file."""
    return f"sqlite:///{tmp_path}/kiln.sqlite"


@pytest.fixture
def empty_db_url(tmp_path) -> str:
    """URL of a second, empty SQLite database (for migration tests)."""
    return f"sqlite:///{tmp_path}/empty.sqlite"


@pytest.fixture
def db(db_url, tmp_path):
    """Configure the API on ``db_url`` with the schema at head."""
    engine = migrated_db(tmp_path)
    assert str(engine.url) == db_url
    yield engine
    api.dispose()
