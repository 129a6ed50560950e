"""Fixtures of the boot tests: the driver-test database, nodes and task locks."""

from tests.unit.conductor.drivers.conftest import acquire, boot_dirs, db, make_node  # noqa: F401
