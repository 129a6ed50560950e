"""The agent's whole lifecycle in one process over the kombu memory transport.

The conductor side is tests.unit.node.recorder.RecordingConductor (the real ConductorManager
is tested on its own); the agent reads a copy of a fixture tree with the real collector.
"""

from __future__ import annotations

import copy
import os
import stat
import uuid

import pytest

from agent.common import exception, rpc
from agent.common.agent_api import AgentAPI
from agent.node.credentials import Credentials, TokenStore
from agent.node.daemon import Agent, lookup_macs
from tests.unit.node.conftest import clone_tree, replace_file
from tests.unit.node.recorder import RecordingConductor

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")
HGX = os.path.join(FIXTURES, "hgx-h100")


@pytest.fixture
def fast(conf, topic):
    """Short waits and this test's conductor topic."""
    conf.override("conductor_topic", topic, "agent")
    conf.override("backoff_initial", 0.02, "agent")
    conf.override("backoff_max", 0.1, "agent")
    conf.override("watch_interval", 0.2, "agent")
    conf.override("use_nvml", False, "inventory")
    return conf


@pytest.fixture
def conductor(transport, topic):
    """A recording conductor served on this test's topic."""
    rec = RecordingConductor(str(uuid.uuid4()), f"token-{uuid.uuid4().hex}")
    srv = rpc.get_server(transport, topic, "conductor-1", [rec])
    srv.start()
    yield rec
    rpc.stop_server(srv, 5)


@pytest.fixture
def hgx_tree(tmp_path):
    """A private copy of the 8-GPU HGX H100 tree that a test may change."""
    if not os.path.isdir(HGX):
        pytest.skip(f"fixture tree {HGX} is missing")
    return clone_tree(HGX, str(tmp_path / "root"))


def test_lookup_macs_prefers_device_nics(inventory):
    assert lookup_macs(inventory) == ["52:54:00:aa:bb:01", "52:54:00:aa:bb:02"]
    for nic in inventory["nics"]:
        nic["pci_address"] = None
    assert lookup_macs(inventory) == [
        "02:42:ac:11:00:01",
        "52:54:00:aa:bb:01",
        "52:54:00:aa:bb:02",
        "7a:00:00:00:00:09",
    ]
    assert lookup_macs({"nics": [{"name": "x", "mac_address": "00:00:00:00:00:00"}, None]}) == []
    assert lookup_macs({}) == []


def test_full_lifecycle_on_the_hgx_tree(fast, transport, conductor, hgx_tree, tmp_path):
    agent = Agent(fast, root=hgx_tree, state_dir=str(tmp_path / "state"), transport=transport)
    agent.start()
    try:
        assert agent.ready.wait(30), "agent never became ready"
        assert conductor.wait_for(lambda r: len(r.of("heartbeat")) >= 2)

        (lookup,) = conductor.of("lookup")
        assert lookup["system_uuid"] == "9a5b2c00-1d2e-11ee-8000-3cecef123456"
        assert lookup["bootif"] == "a0:88:c2:4e:3f:10"
        assert "a0:88:c2:4e:3f:10" in lookup["macs"] and "3c:ec:ef:12:34:56" in lookup["macs"]

        (report,) = conductor.of("report_inventory")
        assert report["node_uuid"] == conductor.node_uuid
        assert report["changes"] is None
        assert len(report["inventory"]["gpus"]) == 8
        assert report["inventory"]["system"]["uuid"] == lookup["system_uuid"]

        beat = conductor.of("heartbeat")[0]
        assert beat["node_uuid"] == conductor.node_uuid and beat["status"]["reports_acked"] == 1

        store = TokenStore(str(tmp_path / "state"))
        assert store.load() == Credentials(conductor.node_uuid, conductor.token)
        assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600

        api = AgentAPI(transport, timeout=10)
        assert api.ping({}, conductor.node_uuid, conductor.token)["node_uuid"] == conductor.node_uuid
        assert len(api.get_inventory({}, conductor.node_uuid, conductor.token)["gpus"]) == 8
        with pytest.raises(exception.InvalidAgentToken):
            api.ping({}, conductor.node_uuid, "not-the-token")

        # Pull the cable of one NIC: the periodic rescan sees it and reports what changed.
        nic = os.path.join(hgx_tree, "sys", "class", "net", "enp25s0np0")
        replace_file(os.path.join(nic, "carrier"), "0\n")
        assert conductor.wait_for(lambda r: len(r.of("report_inventory")) >= 2)
        change = conductor.of("report_inventory")[1]["changes"]
        assert change["added"] == {} and change["removed"] == {}
        assert change["changed"]["nics"]["enp25s0np0"]["carrier"] == {"old": True, "new": False}
    finally:
        agent.shutdown()
    assert agent.exit_code == 0


def _static(inventory: dict):
    return lambda: copy.deepcopy(inventory)


def test_restart_reuses_the_stored_token(fast, transport, conductor, inventory, tmp_path):
    state = str(tmp_path / "state")
    TokenStore(state).save(Credentials(conductor.node_uuid, conductor.token))
    conductor.token_issued = True  # a second lookup gets no token, as from Ironic
    fast.override("watch", False, "agent")
    agent = Agent(fast, state_dir=state, collector=_static(inventory), transport=transport)
    agent.start()
    try:
        assert agent.ready.wait(30)
        assert conductor.of("report_inventory")[0]["node_uuid"] == conductor.node_uuid
        assert conductor.rejected == []
    finally:
        agent.shutdown()


def test_no_token_anywhere_gives_up_after_the_lookup_attempts(
    fast, transport, conductor, inventory, tmp_path
):
    conductor.token_issued = True
    fast.override("lookup_max_attempts", 2, "agent")
    agent = Agent(fast, state_dir=str(tmp_path / "s"), collector=_static(inventory), transport=transport)
    agent.start()
    try:
        assert agent.stop_event.wait(30)
    finally:
        agent.shutdown()
    assert agent.exit_code == 1
    assert len(conductor.of("lookup")) == 2
    assert not agent.ready.is_set()


def test_refused_token_leads_to_a_new_lookup(fast, transport, conductor, inventory, tmp_path):
    state = str(tmp_path / "state")
    TokenStore(state).save(Credentials(conductor.node_uuid, "stale-token"))
    conductor.token_issued = True
    fast.override("watch", False, "agent")
    agent = Agent(fast, state_dir=state, collector=_static(inventory), transport=transport)
    # The first report carries the stale token and is refused; the conductor then re-issues one.
    agent.start()
    try:
        assert conductor.wait_for(lambda r: bool(r.rejected))
        conductor.token_issued = False  # operator reset the token: the next lookup gets one
        assert agent.ready.wait(30)
    finally:
        agent.shutdown()
    assert conductor.rejected == [("report_inventory", "stale-token")]
    assert len(conductor.of("lookup")) >= 2  # the first, then until the conductor re-issues a token
    assert TokenStore(state).load() == Credentials(conductor.node_uuid, conductor.token)
