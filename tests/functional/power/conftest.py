"""Fixtures of the power tests: the driver-test database, nodes and task locks, fast BMC polls."""

from __future__ import annotations

import pytest

from tests.unit.conductor.drivers.conftest import acquire, boot_dirs, db, make_node  # noqa: F401


@pytest.fixture
def fast_polls():
    """Poll BMCs often so the tests do not idle."""
    from agent.common.config import CONF

    CONF.set_override("power_state_poll_interval", 0.2, group="redfish")
    CONF.set_override("power_state_poll_interval", 0.1, group="ipmi")
    yield
    CONF.clear_override("power_state_poll_interval", group="redfish")
    CONF.clear_override("power_state_poll_interval", group="ipmi")
