"""[upgrade_levels]: versions and release names resolved, bad values named, the old option still read."""

from __future__ import annotations

import pytest
from oslo_config import cfg

from agent.common import config, upgrade_levels


@pytest.fixture
def conf(tmp_path):
    """A private ConfigOpts with Kiln's options, parsed from ``text`` written to a file."""

    def _parse(text: str) -> cfg.ConfigOpts:
        path = tmp_path / "kiln.conf"
        path.write_text(text)
        conf = config.register_opts(cfg.ConfigOpts())
        conf(["--config-file", str(path)], project="kiln")
        return conf

    return _parse


def test_unset_is_no_cap(conf):
    c = conf("")
    assert upgrade_levels.version_cap("conductor", c) is None
    assert upgrade_levels.version_cap("agent", c) is None


def test_version_and_release_name(conf):
    c = conf("[upgrade_levels]\nconductor = 1.1\nagent = 2026.12.04\n")
    assert upgrade_levels.version_cap("conductor", c) == "1.1"
    assert upgrade_levels.version_cap("agent", c) == "1.0"
    c = conf("[upgrade_levels]\nconductor = 2026.12.04\n")
    assert upgrade_levels.version_cap("conductor", c) == "1.0"
    assert (
        upgrade_levels.version_cap("conductor", conf("[upgrade_levels]\nconductor = 2026.12.05\n")) == "1.4"
    )


def test_the_newest_release_speaks_what_the_clients_send():
    from agent.conductor.agent_client import AgentClient
    from agent.conductor.rpcapi import ConductorAPI

    newest = upgrade_levels.RELEASES[max(upgrade_levels.RELEASES)]
    assert newest == {"conductor": ConductorAPI.RPC_API_VERSION, "agent": AgentClient.RPC_API_VERSION}


def test_bad_value_names_the_option_and_the_choices(conf):
    with pytest.raises(ValueError, match=r"\[upgrade_levels\]conductor = 'zed' is neither .*2026\.12\.04"):
        upgrade_levels.version_cap("conductor", conf("[upgrade_levels]\nconductor = zed\n"))


def test_the_agents_former_option_is_read(conf):
    c = conf("[agent]\nconductor_version_cap = 1.0\n")
    assert upgrade_levels.version_cap("conductor", c) == "1.0"
