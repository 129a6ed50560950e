"""Fixtures of the power tests: the driver-test database, nodes and task locks, and free ports."""

from __future__ import annotations

import socket

import pytest

from tests.unit.conductor.drivers.conftest import acquire, boot_dirs, db, make_node  # noqa: F401


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fast_polls():
    """Poll BMCs often so the tests do not idle."""
    from agent.common.config import CONF

    CONF.set_override("power_state_poll_interval", 0.2, group="redfish")
    CONF.set_override("power_state_poll_interval", 0.1, group="ipmi")
    yield
    CONF.clear_override("power_state_poll_interval", group="redfish")
    CONF.clear_override("power_state_poll_interval", group="ipmi")
