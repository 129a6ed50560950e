"""Fixtures shared by the conductor tests."""

from __future__ import annotations

import pytest

from agent.db import api as db_api
from agent.db import migration


@pytest.fixture
def db(tmp_path):
    """A migrated SQLite database for this test."""
    engine = db_api.configure(f"sqlite:///{tmp_path}/kiln.sqlite")
    migration.upgrade()
    yield engine
    db_api.dispose()
