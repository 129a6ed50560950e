"""The database API suite of tests/unit/db run on the real PostgreSQL and MariaDB (see conftest.py)."""

from __future__ import annotations

from tests.unit.db import test_api as suite


class TestNodes(suite.TestNodes):
    pass


class TestListNodes(suite.TestListNodes):
    pass


class TestTraits(suite.TestTraits):
    pass


class TestReservations(suite.TestReservations):
    pass


class TestPorts(suite.TestPorts):
    pass


class TestInventory(suite.TestInventory):
    pass


class TestHeartbeats(suite.TestHeartbeats):
    pass


class TestConductors(suite.TestConductors):
    pass


class TestAllocations(suite.TestAllocations):
    pass
