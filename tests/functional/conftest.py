"""The functional run's own RabbitMQ vhost (one per pytest-xdist worker), and how files go to workers."""

from __future__ import annotations

import pytest

from tests.functional import procs
from tests.functional.faults.private import PrivateRabbit


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


@pytest.fixture
def private_rabbit():
    """A RabbitMQ node of the test's own, started, for a test that stops it; removed afterwards.

    The shared broker serves the other tests (and workers) meanwhile: no test stops that one.
    """
    try:
        node = PrivateRabbit()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        node.start()
        yield node
    finally:
        node.remove()


# Tests that share something outside their own temporary directory run on one worker, one after
# another, under pytest-xdist: kiln-broker's accounts (kiln-conductor, kiln-api, kiln-agent) are
# fixed names on the shared RabbitMQ. Every other file is a unit of its own (its module fixtures).
SHARED_SCOPES = ("tests/functional/broker/",)


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist: hand out whole files, and the directories of SHARED_SCOPES whole."""
    from xdist.scheduler import LoadScopeScheduling

    class _FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return next((scope for scope in SHARED_SCOPES if path.startswith(scope)), path)

    return _FileScheduling(config, log)
