"""Per-node agent accounts on the machine's real RabbitMQ, with a real kiln-conductor and kiln-agent.

The test's own vhost; the conductor's account is guest (everything). Node A's account is made as the
boot interface makes it (broker_accounts.grant_agent_access, rabbitmqctl), its signed agent.conf
served over HTTP; kiln-agent boots with kiln.config_url and kiln.config_key on its command line,
looks up, reports and heartbeats with that account alone. Then, as tenant root on node A would, the
test takes A's transport URL and token and tries what an agent must not do.
"""

from __future__ import annotations

import configparser
import functools
import http.server
import json
import threading
import urllib.parse
import uuid
from pathlib import Path

import amqp
import pytest
from oslo_config import cfg

from agent.common import config, config_signing, exception, rpc, states, tokens
from agent.conductor import broker_accounts, rpc_guard
from agent.conductor.drivers import driver_factory
from agent.db import api as db_api
from agent.node.conductor_client import ConductorClient
from tests.functional import procs
from tests.unit.node.conftest import clone_tree, replace_file

CONF = cfg.CONF
HGX = Path(__file__).resolve().parents[2] / "fixtures" / "sysfs" / "hgx-h100"
HGX_SYSTEM_UUID = "9a5b2c00-1d2e-11ee-8000-3cecef123456"

pytestmark = [
    pytest.mark.skipif(not procs.reachable(5672), reason="RabbitMQ is not listening on 127.0.0.1:5672"),
    pytest.mark.skipif(not procs.reachable(5432), reason="PostgreSQL is not listening on 127.0.0.1:5432"),
    pytest.mark.skipif(procs.RABBITMQCTL is None, reason="rabbitmqctl is not installed"),
]


def _make_node(system_uuid: str | None = None) -> str:
    values = {
        "uuid": str(uuid.uuid4()),
        "driver": "fake-hardware",
        "provision_state": states.MANAGEABLE,
        "system_uuid": system_uuid,
    }
    values.update(driver_factory.check_and_update_node_interfaces(values))
    return db_api.create_node(values).uuid


def _amqp(url: str) -> amqp.Connection:
    """A raw AMQP connection (py-amqp, publisher confirms) with the credentials of transport ``url``."""
    parts = urllib.parse.urlsplit(url)
    conn = amqp.Connection(
        f"{parts.hostname}:{parts.port or 5672}",
        userid=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""),
        virtual_host=urllib.parse.unquote(parts.path[1:]) or "/",
        confirm_publish=True,
    )
    conn.connect()
    return conn


def _refused(conn: amqp.Connection, action) -> str:
    """Run ``action(channel)`` on a new channel; the broker's refusal text (fails if it was allowed)."""
    channel = conn.channel()
    with pytest.raises(amqp.exceptions.AccessRefused) as info:
        action(channel)
    return str(info.value)


@pytest.fixture
def stack(tmp_path):
    """Vhost, database, signing key, HTTP server of http_root, kiln-conductor; yields a dict."""
    vhost = f"kiln-broker-{uuid.uuid4().hex[:10]}"
    procs.add_vhost(vhost)
    config.register_opts(CONF)
    CONF([], project="kiln")
    http_root = tmp_path / "http"
    http_root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(http_root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    key_path = tmp_path / "config-signing.pem"
    config_signing.write_private_key(str(key_path), config_signing.generate_key())
    overrides = {
        ("broker", "agent_accounts"): "per_node",
        ("broker", "vhost"): vhost,
        ("broker", "agent_broker_url"): f"rabbit://127.0.0.1:5672/{vhost}",
        ("broker", "config_signing_key_file"): str(key_path),
        ("pxe", "http_root"): str(http_root),
        ("pxe", "http_url"): f"http://127.0.0.1:{web.server_address[1]}",
    }
    for (group, name), value in overrides.items():
        CONF.set_override(name, value, group=group)
    procs_started = []
    try:
        with procs.throwaway_postgres() as db_url:
            conf = procs.write_conf(
                tmp_path / "conductor.conf",
                {
                    "DEFAULT": {
                        "transport_url": f"rabbit://guest:guest@127.0.0.1:5672/{vhost}",
                        "state_path": tmp_path,
                    },
                    "database": {"connection": db_url},
                    "conductor": {
                        "host": "ft-broker",
                        "heartbeat_interval": 1,
                        "agent_heartbeat_interval": 1,
                    },
                },
            )
            procs.dbsync(conf)
            db_api.configure(db_url)
            log = tmp_path / "conductor.log"
            proc = procs.start("agent.cmd.conductor", conf, log)
            procs_started.append(proc)
            procs.wait_for_log(log, "serving RPC on topic", proc)
            yield {"vhost": vhost, "tmp": tmp_path, "log": log, "conductor": proc, "procs": procs_started}
            db_api.dispose()
    finally:
        for proc in procs_started:
            procs.stop(proc, 15)
        for (group, name), _value in overrides.items():
            CONF.clear_override(name, group=group)
        web.shutdown()
        web.server_close()
        for user in broker_accounts.Rabbitmqctl(vhost=vhost).users():
            if user.startswith(broker_accounts.AGENT_USER + "-"):
                procs.rabbitmqctl("delete_user", user)
        procs.delete_vhost(vhost)


def _served_url(node_uuid: str) -> str:
    parser = configparser.ConfigParser()
    parser.read(broker_accounts.served_config_path(node_uuid))
    return parser["DEFAULT"]["transport_url"]


@pytest.mark.skipif(not HGX.is_dir(), reason=f"fixture tree {HGX} is missing")
def test_per_node_account_agent_works_and_cannot_act_as_another_node(stack) -> None:
    tmp, log = stack["tmp"], stack["log"]
    node_a = _make_node(HGX_SYSTEM_UUID)
    node_b = _make_node()

    # The boot interface's step: account and signed agent.conf of node A (and of B, booting too).
    broker_accounts.grant_agent_access(node_a)
    broker_accounts.grant_agent_access(node_b)
    users = broker_accounts.Rabbitmqctl(vhost=stack["vhost"]).users()
    assert {broker_accounts.agent_user(node_a), broker_accounts.agent_user(node_b)} <= users
    served = Path(broker_accounts.served_config_path(node_a)).read_bytes()
    assert served.splitlines()[-1].startswith(config_signing.MARKER)
    url_a = _served_url(node_a)
    password_a = urllib.parse.urlsplit(url_a).password
    assert urllib.parse.urlsplit(url_a).username == f"kiln-agent-{node_a}"

    # kiln-agent of node A boots with the config URL and key on its command line, nothing else.
    root = clone_tree(str(HGX), str(tmp / "root"))
    key = broker_accounts.config_key()
    replace_file(
        str(Path(root) / "proc" / "cmdline"),
        f"kiln.node_uuid={node_a} kiln.config_url={broker_accounts.config_url(node_a)} "
        f"kiln.config_key={key}\n",
    )
    agent_conf = procs.write_conf(
        tmp / "agent.conf",
        {
            "inventory": {"use_nvml": "false"},
            "agent": {
                "root": root,
                "state_dir": tmp / "agent-state",
                "lookup_timeout": 10,
                "report_timeout": 10,
                "backoff_initial": 0.5,
                "backoff_max": 2,
                "watch": "false",
            },
        },
    )
    agent_log = tmp / "agent.log"
    agent = procs.start("agent.cmd.agent", agent_conf, agent_log)
    stack["procs"].append(agent)
    live = (stack["conductor"], agent)
    procs.wait_for(lambda: db_api.get_node_inventory(db_api.get_node(node_a).id), 90, "A's inventory", live)
    first = procs.wait_for(lambda: db_api.get_node(node_a).last_heartbeat_at, 60, "A's heartbeat", live)
    assert first is not None
    assert "signature checked" in procs.read(agent_log)
    assert "ACCESS_REFUSED" not in procs.read(agent_log), procs.read(agent_log)[-3000:]

    # Tenant root on node A steals its transport URL and token.
    token_a = json.loads((tmp / "agent-state" / "agent-token.json").read_text())["agent_token"]
    assert tokens.token_node(token_a) == node_a
    transport_a = rpc.get_transport(CONF, url=url_a)
    try:
        client = ConductorClient(transport_a, topic=rpc_guard.agent_topic(rpc.CONDUCTOR_TOPIC), timeout=20)
        # 1. A conductor/admin method sent with the agent's credentials: refused, logged without secrets.
        forged = client._prepare("1.0", method="change_provision_state")
        with pytest.raises(exception.AgentRPCRefused, match="change_provision_state"):
            forged.call({}, "change_provision_state", node_id=node_b, verb="deleted", agent_token=token_a)
        # 2. An agent method claiming node B with A's token: refused as issued to another node.
        reports = len(db_api.list_inventory_history(db_api.get_node(node_b).id))
        with pytest.raises(exception.InvalidAgentToken, match="issued to another node"):
            client.report_inventory({}, node_b, token_a, {"cpu": {}}, None)
        assert len(db_api.list_inventory_history(db_api.get_node(node_b).id)) == reports
        # 3. A stale token of A's own node (an earlier boot).
        stale = tokens.new_token(node_a)
        with pytest.raises(exception.InvalidAgentToken, match="stale"):
            client.report_inventory({}, node_a, stale, {"cpu": {}}, None)
    finally:
        transport_a.cleanup()
    conductor_log = procs.read(log)
    assert f"Refused RPC change_provision_state on the agents' topic kiln.conductor.agent (node {node_b}" in (
        conductor_log
    )
    assert f"Rejected report_inventory from node {node_b}: {tokens.OTHER_NODE}" in conductor_log
    assert f"Rejected report_inventory from node {node_a}: {tokens.STALE}" in conductor_log
    for secret in (token_a, token_a.split(".", 1)[1], stale.split(".", 1)[1], password_a):
        assert secret not in conductor_log
        assert secret not in procs.read(agent_log)

    # 4. What the broker itself refuses A's account: the API's topic, B's commands.
    conn = _amqp(url_a)
    try:
        said = _refused(
            conn,
            lambda ch: ch.basic_publish(amqp.Message("{}"), exchange="kiln", routing_key=rpc.CONDUCTOR_TOPIC),
        )
        assert "routing key" in said or "access to topic" in said, said
        _refused(conn, lambda ch: ch.queue_declare(f"{rpc.AGENT_TOPIC}.{node_b}", auto_delete=False))
        _refused(conn, lambda ch: ch.basic_consume(f"{rpc.AGENT_TOPIC}.{node_b}"))
        _refused(
            conn,
            lambda ch: ch.queue_bind(
                f"{rpc.AGENT_TOPIC}.{node_a}", "kiln", routing_key=f"{rpc.AGENT_TOPIC}.{node_b}"
            ),
        )
        # What an agent does send is accepted (confirmed) by the broker: a sign the refusals are precise.
        conn.channel().basic_publish(
            amqp.Message("{}"), exchange="kiln", routing_key=rpc.heartbeat_topic(rpc.CONDUCTOR_TOPIC)
        )
    finally:
        conn.collect()

    # Ramdisk clean-up: A's account is deleted, its agent.conf removed, its URL no longer connects.
    broker_accounts.revoke_agent_access(node_a)
    assert broker_accounts.agent_user(node_a) not in broker_accounts.Rabbitmqctl(vhost=stack["vhost"]).users()
    assert not Path(broker_accounts.served_config_path(node_a)).exists()
    with pytest.raises(amqp.exceptions.AccessRefused):
        _amqp(url_a)
