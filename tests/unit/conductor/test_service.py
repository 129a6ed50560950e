"""ConductorService on SQLite and kombu+memory: registration, RPC, sd_notify, periodic pass, stop."""

from __future__ import annotations

import socket

import pytest
from oslo_config import cfg

from agent.common import config, rpc
from agent.common.conductor_api import ConductorAPI
from agent.conductor import service as service_mod
from agent.db import api as db_api
from agent.db import migration
from agent.node.notify import Notifier

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

        answer = ConductorAPI(transport, timeout=10).lookup({}, ["52:54:00:00:01:01"], None, None)
        assert db_api.get_node(answer["node"]["uuid"]).provision_state == "enroll"

        svc.run_periodics()
        assert svc._live == {HOST}
    finally:
        svc.stop()
        transport.cleanup()
    assert sock.recv(4096) == b"STOPPING=1"
    assert db_api.get_conductor(HOST).online is False
    assert db_api.get_online_conductors(60) == []
