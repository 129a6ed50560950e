"""Settings every unit test shares: nothing is written outside the test's temporary directories."""

from __future__ import annotations

import os

import pytest
from oslo_config import cfg

from agent.common import config  # noqa: F401 - registers Kiln's options


def pytest_xdist_auto_num_workers() -> int:
    """``-n auto``: one and a half workers per CPU."""
    # A test waiting on a thread, a timer or a child process then leaves its CPU to another worker
    # instead of idling it: about a quarter of the unit suite's worker time is such waits.
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(2, cpus * 3 // 2)


@pytest.fixture(scope="session", autouse=True)
def turnover_key(tmp_path_factory):
    """Cleanings sign their turnover records with a key of this run (not under /var/lib/kiln)."""
    path = tmp_path_factory.mktemp("turnover") / "turnover-ed25519.pem"
    cfg.CONF.set_override("signing_key_file", str(path), group="turnover")
    yield path
    cfg.CONF.clear_override("signing_key_file", group="turnover")


@pytest.fixture(scope="session", autouse=True)
def quick_bmc_retries():
    """A BMC that cannot be reached is retried after 10 ms, not a second: unit tests wait on nothing."""
    cfg.CONF.set_override("connection_retry_interval", 0.01, group="redfish")
    yield
    cfg.CONF.clear_override("connection_retry_interval", group="redfish")
