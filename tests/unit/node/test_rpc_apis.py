"""ConductorClient and AgentClient round trips over the in-process kombu memory transport."""

from __future__ import annotations

import uuid

import pytest
from oslo_messaging.rpc.dispatcher import ExpectedException

from agent.common import exception, rpc
from agent.conductor.agent_client import AgentClient
from agent.node.conductor_client import ConductorClient
from agent.node.endpoints import AgentEndpoint
from tests.unit.node.recorder import RecordingConductor


@pytest.fixture
def server(transport, topic):
    started = []

    def _start(endpoints, server_name="c1", server_topic=None):
        srv = rpc.get_server(transport, server_topic or topic, server_name, endpoints)
        srv.start()
        started.append(srv)
        return srv

    yield _start
    for srv in started:
        rpc.stop_server(srv, 5)


def test_agent_facing_methods(transport, topic, server):
    rec = RecordingConductor("node-1", "tok")
    server([rec])
    api = ConductorClient(transport, topic=topic, timeout=10)
    answer = api.lookup({"request_id": "req-1"}, ["aa:bb:cc:dd:ee:ff"], "sys-uuid", "aa:bb:cc:dd:ee:ff")
    assert answer["node"]["uuid"] == "node-1"
    assert answer["agent_token"] == "tok"
    assert answer["config"]["heartbeat_interval"] == 1
    assert rec.of("lookup") == [
        {"macs": ["aa:bb:cc:dd:ee:ff"], "system_uuid": "sys-uuid", "bootif": "aa:bb:cc:dd:ee:ff"}
    ]
    assert api.lookup({}, ["aa:bb:cc:dd:ee:ff"])["agent_token"] is None  # handed out once

    assert api.report_inventory({}, "node-1", "tok", {"nics": []}, {"added": {}}) == {
        "stored": True,
        "traits": [],
    }
    api.heartbeat({}, "node-1", "tok", {"uptime_s": 3})
    api.step_result({}, "node-1", "tok", "erase", {"ok": True})
    assert rec.wait_for(lambda r: r.of("heartbeat") and r.of("step_result"), 10)
    assert rec.of("heartbeat") == [{"node_uuid": "node-1", "status": {"uptime_s": 3}}]
    assert rec.of("step_result") == [{"node_uuid": "node-1", "step": "erase", "result": {"ok": True}}]


def test_wrong_token_comes_back_as_invalid_agent_token(transport, topic, server):
    server([RecordingConductor("node-1", "tok")])
    api = ConductorClient(transport, topic=topic, timeout=10)
    with pytest.raises(exception.InvalidAgentToken, match="node-1 is missing or wrong"):
        api.report_inventory({}, "node-1", "forged", {})


def test_version_cap_below_the_method_refuses_to_send(transport, topic):
    api = ConductorClient(transport, topic=topic, version_cap="0.9")
    assert not api.can_send_version("1.0")
    with pytest.raises(
        exception.RPCVersionCapped,
        match=r"lookup needs kiln.conductor\S* RPC API 1.0, but \[upgrade_levels\]conductor caps it at 0.9",
    ):
        api.lookup({}, ["aa:bb:cc:dd:ee:ff"])
    assert ConductorClient(transport, topic=topic, version_cap="1.0").can_send_version("1.0")


def test_agent_api_with_token_check(transport, server):
    node = str(uuid.uuid4())
    steps = {"echo": lambda args: {"echoed": args}}
    endpoint = AgentEndpoint(
        node, lambda: "tok", lambda: {"nics": [{"name": "eth0"}]}, steps, version="1.2.3"
    )
    server([endpoint], server_name=node, server_topic=rpc.AGENT_TOPIC)
    api = AgentClient(transport, timeout=10)
    assert api.ping({}, node, "tok") == {"node_uuid": node, "version": "1.2.3"}
    assert api.get_inventory({}, node, "tok") == {"nics": [{"name": "eth0"}]}
    assert api.run_step({}, node, "tok", "echo", {"a": 1}) == {"echoed": {"a": 1}}
    with pytest.raises(exception.InvalidAgentToken, match=node):
        api.ping({}, node, "wrong")
    with pytest.raises(exception.InvalidAgentToken):
        api.get_inventory({}, node, None)
    with pytest.raises(exception.InvalidParameterValue, match="has no step 'erase'; known steps: echo"):
        api.run_step({}, node, "tok", "erase")
    with pytest.raises(ValueError, match="needs the node UUID"):
        api.ping({}, "", "tok")


def test_endpoint_refuses_everything_before_a_token_exists():
    endpoint = AgentEndpoint("n", lambda: None, dict)
    # Called directly, oslo.messaging's expected_exceptions wrapper carries the real error.
    with pytest.raises(ExpectedException) as info:
        endpoint.ping({}, agent_token="")
    assert info.value.exc_info[0] is exception.InvalidAgentToken


def test_clients_default_to_their_topic(transport):
    assert AgentClient(transport).topic == "kiln.agent"
    assert ConductorClient(transport).topic == "kiln.conductor"
    assert ConductorClient(transport, topic="kiln.other").topic == "kiln.other"
    assert AgentClient(transport, version_cap="0.9").can_send_version("1.0") is False


def test_clients_take_their_cap_from_upgrade_levels(conf, transport, topic):
    conf.override("agent", "0.9", group="upgrade_levels")
    conf.override("conductor", "2026.12.04", group="upgrade_levels")
    agent_api = AgentClient(transport)
    assert agent_api.version_cap == "0.9"
    with pytest.raises(
        exception.RPCVersionCapped, match=r"ping needs kiln.agent RPC API 1.0, but \[upgrade_levels\]agent"
    ):
        agent_api.ping({}, "node-1", "tok")
    assert ConductorClient(transport, topic=topic).version_cap == "1.0"
    assert ConductorClient(transport, topic=topic, version_cap="1.2").version_cap == "1.2"  # given wins
