"""Settings every unit test shares: nothing is written outside the test's temporary directories."""

from __future__ import annotations

import pytest
from oslo_config import cfg

from agent.common import config  # noqa: F401 - registers Kiln's options


@pytest.fixture(scope="session", autouse=True)
def turnover_key(tmp_path_factory):
    """Cleanings sign their turnover records with a key of this run (not under /var/lib/kiln)."""
    path = tmp_path_factory.mktemp("turnover") / "turnover-ed25519.pem"
    cfg.CONF.set_override("signing_key_file", str(path), group="turnover")
    yield path
    cfg.CONF.clear_override("signing_key_file", group="turnover")
