"""The migration and kiln-dbsync tests of tests/unit/db run on the real PostgreSQL and MariaDB."""

from __future__ import annotations

from tests.unit.db import test_migration as suite


class TestMigrations(suite.TestMigrations):
    pass


class TestDbsync(suite.TestDbsync):
    test_config_file_state_path = None  # SQLite-only: the default file under state_path
    test_bad_url = None  # backend-independent
