"""The agents' topic serves only the agents' methods: the rest is refused and logged without secrets."""

from __future__ import annotations

import logging
import uuid

import pytest
from oslo_config import cfg

from agent.common import config, exception, rpc, tokens
from agent.conductor import rpc_guard
from agent.conductor.manager import ConductorManager
from agent.db import api as db_api
from agent.node.conductor_client import ConductorClient
from tests.unit.conductor.test_agent_endpoints import HGX_UUID
from tests.unit.schema import migrated_db

CONF = cfg.CONF
HOST = "unit-guard"
TOPIC = rpc_guard.agent_topic(rpc.CONDUCTOR_TOPIC)


@pytest.fixture
def gateway(tmp_path):
    """The gateway of a real ConductorManager on kombu+memory (SQLite); yields (transport, agents' client)."""
    config.register_opts(CONF)
    CONF([], project="kiln")
    CONF.set_override("enable_discovery", True, group="conductor")
    migrated_db(tmp_path)
    db_api.register_conductor(HOST, ["fake-hardware"])
    transport = rpc.get_transport(CONF, url="kombu+memory:////")
    server = rpc.get_server(transport, TOPIC, HOST, [rpc_guard.AgentGateway(ConductorManager(HOST), TOPIC)])
    server.start()
    yield transport, ConductorClient(transport, topic=TOPIC, timeout=10)
    rpc.stop_server(server, 10)
    transport.cleanup()
    db_api.dispose()
    CONF.clear_override("enable_discovery", group="conductor")


def test_agent_methods_pass_through(gateway) -> None:
    _transport, client = gateway
    found = client.lookup({}, ["52:54:00:00:00:01"], HGX_UUID)
    token = found["agent_token"]
    assert tokens.token_node(token) == found["node"]["uuid"]
    with pytest.raises(exception.InvalidAgentToken, match="issued to another node"):
        client.report_inventory({}, found["node"]["uuid"], tokens.new_token(str(uuid.uuid4())), {"cpu": {}})


@pytest.mark.parametrize("method", ["change_provision_state", "destroy_node", "update_node", "vif_attach"])
def test_other_methods_are_refused_and_logged_without_argument_values(gateway, caplog, method) -> None:
    _transport, client = gateway
    node = str(uuid.uuid4())
    secret = "s3cr3t-" + uuid.uuid4().hex
    caplog.set_level(logging.WARNING, logger="agent.conductor.rpc_guard")
    with pytest.raises(exception.AgentRPCRefused, match=f"{method} may not be called on the agents' topic"):
        client._prepare("1.0", method=method).call(
            {}, method, node_id=node, agent_token=secret, password=secret
        )
    assert (
        f"Refused RPC {method} on the agents' topic {TOPIC} (node {node}, "
        "arguments agent_token, node_id, password)" in caplog.text
    )
    assert secret not in caplog.text


def test_private_names_stay_unreachable(gateway) -> None:
    import oslo_messaging as messaging

    _transport, client = gateway
    with pytest.raises(messaging.RemoteError):  # DefaultRPCAccessPolicy: no underscore methods
        client._prepare("1.0", method="_manager").call({}, "_call")
