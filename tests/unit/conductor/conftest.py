"""Fixtures shared by the conductor tests."""

from __future__ import annotations

import pytest

from agent.db import api as db_api
from tests.unit.schema import migrated_db


@pytest.fixture
def db(tmp_path):
    """A migrated SQLite database for this test."""
    engine = migrated_db(tmp_path)
    yield engine
    db_api.dispose()
