"""The functional run's own RabbitMQ vhost: made before the first test, removed after the last."""

from __future__ import annotations

import pytest

from tests.functional import procs


@pytest.fixture(scope="session", autouse=True)
def rabbit_vhost():
    """This run's vhost (procs.RABBIT_URL names it), when RabbitMQ is up; gone after the run."""
    if not procs.reachable(5672):
        yield None  # the tests that need RabbitMQ skip, naming it
        return
    procs.add_vhost(procs.RABBIT_VHOST)
    try:
        yield procs.RABBIT_VHOST
    finally:
        procs.delete_vhost(procs.RABBIT_VHOST)
