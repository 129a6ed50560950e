"""ConductorService on SQLite and kombu+memory: registration, RPC, sd_notify, periodic pass, stop."""

from __future__ import annotations

import datetime
import socket

import pytest
from oslo_config import cfg

from agent.common import config, rpc
from agent.common.notify import Notifier
from agent.conductor import service as service_mod
from agent.db import api as db_api
from agent.db import migration
from agent.node.conductor_client import ConductorClient

CONF = cfg.CONF
HOST = "svc-conductor"


@pytest.fixture
def conf(tmp_path):
    """Options for one conductor and a fresh SQLite database (not migrated)."""
    config.register_opts(CONF)
    CONF([], project="kiln")
    CONF.set_override("host", HOST, group="conductor")
    db_api.configure(f"sqlite:///{tmp_path}/kiln.sqlite")
    yield CONF
    db_api.dispose()
    CONF.clear_override("host", group="conductor")


@pytest.fixture
def notify_socket(tmp_path):
    """A real datagram socket standing in for systemd's notify socket."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def test_refuses_an_unmigrated_database(conf) -> None:
    svc = service_mod.ConductorService(conf, transport=rpc.get_transport(conf, url="kombu+memory:////"))
    with pytest.raises(service_mod.SchemaOutOfDate) as err:
        svc.start()
    assert "kiln-dbsync upgrade" in str(err.value)
    assert "none (empty database)" in str(err.value)
    assert svc._server is None


def test_start_serve_and_stop(conf, notify_socket) -> None:
    migration.upgrade()
    path, sock = notify_socket
    transport = rpc.get_transport(conf, url="kombu+memory:////")
    svc = service_mod.ConductorService(conf, transport=transport, notifier=Notifier({"NOTIFY_SOCKET": path}))
    svc.start()
    try:
        assert sock.recv(4096).decode().startswith("READY=1\nSTATUS=conductor svc-conductor serving")
        (row,) = db_api.list_conductors()
        assert (row.hostname, row.online, row.drivers) == (HOST, True, ["fake-hardware"])
        before = row.updated_at
        svc._heartbeat()
        assert db_api.get_conductor(HOST).updated_at > before

        answer = ConductorClient(transport, timeout=10).lookup({}, ["52:54:00:00:01:01"], None, None)
        assert db_api.get_node(answer["node"]["uuid"]).provision_state == "enroll"

        svc.run_periodics()
        assert svc._live == {HOST}
    finally:
        svc.stop()
        transport.cleanup()
    assert sock.recv(4096) == b"STOPPING=1"
    assert db_api.get_conductor(HOST).online is False
    assert db_api.get_online_conductors(60) == []


def test_heartbeats_have_their_own_topic(conf) -> None:
    """Lookup names the heartbeat topic; heartbeats there and on the old topic count; nothing else served."""
    import oslo_messaging as messaging

    migration.upgrade()
    transport = rpc.get_transport(conf, url="kombu+memory:////")
    svc = service_mod.ConductorService(conf, transport=transport)
    svc.start()
    try:
        client = ConductorClient(transport, timeout=10)
        answer = client.lookup({}, ["52:54:00:00:02:01"], None, None)
        node, token = answer["node"]["uuid"], answer["agent_token"]
        assert answer["config"]["heartbeat_topic"] == "kiln.conductor.heartbeat"
        node_id = db_api.get_node(node).id

        client.heartbeat({}, node, token, {}, topic=answer["config"]["heartbeat_topic"])
        _wait_for(lambda: node_id in svc.manager.heartbeats.pending())
        svc.manager.flush_heartbeats()
        first = db_api.get_node(node).last_heartbeat_at
        assert first is not None
        first = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
        db_api.record_agent_heartbeats({node_id: first})

        client.heartbeat({}, node, token, {})  # an agent of a conductor that named no heartbeat topic
        _wait_for(lambda: node_id in svc.manager.heartbeats.pending())
        svc.manager.flush_heartbeats()
        assert db_api.get_node(node).last_heartbeat_at > first

        on_heartbeat_topic = ConductorClient(transport, topic="kiln.conductor.heartbeat", timeout=10)
        with pytest.raises(messaging.RemoteError) as err:
            on_heartbeat_topic.lookup({}, ["52:54:00:00:02:02"], None, None)
        assert err.value.exc_type == "NoSuchMethod"
        assert db_api.lookup_nodes_by_macs(["52:54:00:00:02:02"]) == []
    finally:
        svc.stop()
        transport.cleanup()


def _wait_for(predicate, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
