"""AMQP over TLS: a private RabbitMQ node with a TLS listener and certificates the test makes.

kiln-conductor (with a client certificate) and kiln-agent (checking the broker against the CA)
talk through it with oslo.messaging's [oslo_messaging_rabbit] ssl options: the node is discovered
and its inventory stored. A plain AMQP client and a client trusting another CA get nowhere.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import amqp
import pytest
from oslo_config import cfg

from agent.common import config
from agent.db import api as db_api
from tests.functional import procs
from tests.functional.broker.certs import CA
from tests.functional.faults.private import PrivateRabbit
from tests.unit.node.conftest import clone_tree

CONF = cfg.CONF
HGX = Path(__file__).resolve().parents[2] / "fixtures" / "sysfs" / "hgx-h100"
HGX_SYSTEM_UUID = "9a5b2c00-1d2e-11ee-8000-3cecef123456"


@pytest.fixture
def tls_rabbit(tmp_path):
    """A private RabbitMQ with a TLS listener; yields (rabbit, TLS port, CA, paths of the client files)."""
    try:
        rabbit = PrivateRabbit()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    ca = CA()
    server = ca.issue("localhost", server=True)
    tls_port = procs.free_port()
    ca_file = rabbit.add_file("ca.pem", ca.pem)
    rabbit.configure(
        f"listeners.ssl.default = 127.0.0.1:{tls_port}\n"
        f"ssl_options.cacertfile = {ca_file}\n"
        f"ssl_options.certfile = {rabbit.add_file('server.pem', server.cert)}\n"
        f"ssl_options.keyfile = {rabbit.add_file('server.key', server.key)}\n"
        "ssl_options.verify = verify_peer\n"
        "ssl_options.fail_if_no_peer_cert = false\n"
    )
    client = ca.issue("kiln-conductor", server=False)
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "conductor.pem", "key": tmp_path / "conductor.key"}
    files["ca"].write_bytes(ca.pem)
    files["cert"].write_bytes(client.cert)
    files["key"].write_bytes(client.key)
    files["key"].chmod(0o600)
    try:
        rabbit.start()
        procs.wait_for(lambda: procs.reachable(tls_port), 30, "the TLS listener")
        yield rabbit, tls_port, files
    finally:
        rabbit.remove()


def test_plain_and_untrusting_clients_are_refused(tls_rabbit) -> None:
    _rabbit, port, files = tls_rabbit
    with pytest.raises((OSError, amqp.exceptions.AMQPError)):  # a plain AMQP greeting to a TLS port
        conn = amqp.Connection(f"127.0.0.1:{port}", userid="guest", password="guest", connect_timeout=5)
        conn.connect()
    other = ssl.create_default_context(cadata=CA("another CA").pem.decode())
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            other.wrap_socket(raw, server_hostname="localhost").close()
    trusting = {"ca_certs": str(files["ca"]), "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": "localhost"}
    conn = amqp.Connection(
        f"localhost:{port}", userid="guest", password="guest", ssl=trusting, connect_timeout=10
    )
    conn.connect()  # the CA's own clients get in
    conn.close()


@pytest.mark.skipif(not HGX.is_dir(), reason=f"fixture tree {HGX} is missing")
def test_conductor_and_agent_over_tls(tls_rabbit, tmp_path) -> None:
    _rabbit, port, files = tls_rabbit
    url = f"rabbit://guest:guest@localhost:{port}/"
    db_url = f"sqlite:///{tmp_path}/kiln.sqlite"
    tls = {"ssl": "true", "ssl_ca_file": files["ca"]}
    conductor_conf = procs.write_conf(
        tmp_path / "conductor.conf",
        {
            "DEFAULT": {"transport_url": url, "state_path": tmp_path},
            "database": {"connection": db_url},
            "conductor": {"host": "ft-tls", "enable_discovery": "true", "agent_heartbeat_interval": 1},
            "oslo_messaging_rabbit": {**tls, "ssl_cert_file": files["cert"], "ssl_key_file": files["key"]},
        },
    )
    agent_conf = procs.write_conf(
        tmp_path / "agent.conf",
        {
            "DEFAULT": {"transport_url": url},
            "inventory": {"use_nvml": "false"},
            "agent": {
                "root": clone_tree(str(HGX), str(tmp_path / "root")),
                "state_dir": tmp_path / "agent-state",
                "lookup_timeout": 10,
                "backoff_initial": 0.5,
                "backoff_max": 2,
                "watch": "false",
            },
            "oslo_messaging_rabbit": tls,
        },
    )
    procs.dbsync(conductor_conf)
    config.register_opts(CONF)
    db_api.configure(db_url)
    started = []
    try:
        conductor = procs.start("agent.cmd.conductor", conductor_conf, tmp_path / "conductor.log")
        started.append(conductor)
        procs.wait_for_log(tmp_path / "conductor.log", "serving RPC on topic", conductor)
        agent = procs.start("agent.cmd.agent", agent_conf, tmp_path / "agent.log")
        started.append(agent)

        def stored():
            try:
                node = db_api.get_node_by_system_uuid(HGX_SYSTEM_UUID)
            except Exception:  # noqa: BLE001 - not discovered yet
                return None
            return node if node.last_heartbeat_at and db_api.get_node_inventory(node.id) else None

        node = procs.wait_for(stored, 120, "the node's inventory and heartbeat over TLS", tuple(started))
        assert len(db_api.get_node_inventory(node.id)["gpus"]) == 8
    finally:
        for proc in started:
            procs.stop(proc, 15)
        db_api.dispose()
