"""kiln-conductor and kiln-agent stop cleanly within 5 s of SIGTERM or SIGINT, over the real RabbitMQ.

The conductor is stopped while it holds a node's lock for a power change that hangs on a BMC which
accepts the connection and never answers: it must not wait for the BMC, and must leave the node
unlocked with the interrupted change recorded.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import uuid

import oslo_messaging as messaging
import pytest
from oslo_config import cfg

from agent.common import config, rpc
from agent.db import api as db_api
from tests.functional import procs
from tests.functional.test_conductor_rabbit import HGX, Cluster

CONF = cfg.CONF
#: What a clean stop may take, from the signal to the process's exit.
STOP_WITHIN = 5.0

pytestmark = [
    pytest.mark.skipif(not procs.reachable(5672), reason="RabbitMQ is not listening on 127.0.0.1:5672"),
    pytest.mark.skipif(not procs.reachable(5432), reason="PostgreSQL is not listening on 127.0.0.1:5432"),
    pytest.mark.skipif(not HGX.is_dir(), reason=f"fixture tree {HGX} is missing"),
]
SIGNALS = pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])


@pytest.fixture
def cluster(tmp_path):
    """Processes on a throwaway PostgreSQL database and this test's own exchange on the run's vhost."""
    config.register_opts(CONF)
    CONF([], project="kiln")
    with procs.throwaway_postgres() as url:
        db_api.configure(url)
        c = Cluster(tmp_path, url)
        try:
            yield c
        finally:
            c.close()
            db_api.dispose()


@pytest.fixture
def silent_bmc():
    """A TCP port that accepts connections (the kernel's backlog) and never answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def _signal_and_time(proc: subprocess.Popen, signum: int, logs: callable) -> float:
    """Send ``signum``, wait for the exit (failing after STOP_WITHIN s), assert status 0; seconds taken."""
    started = time.monotonic()
    proc.send_signal(signum)
    try:
        status = proc.wait(STOP_WITHIN)
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"{proc.args[2]} still runs {STOP_WITHIN} s after {signal.Signals(signum).name}:\n{logs()}"
        )
    elapsed = time.monotonic() - started
    assert status == 0, logs()
    assert elapsed < STOP_WITHIN
    print(f"{proc.args[2]} stopped {elapsed:.2f} s after {signal.Signals(signum).name}")  # shown with -s
    return elapsed


@SIGNALS
def test_conductor_stops_promptly_and_releases_the_node_it_holds(cluster, silent_bmc, signum) -> None:
    host = f"ft-stop-{uuid.uuid4().hex[:6]}"
    conductor, log = cluster.conductor(
        host,
        enabled_hardware_types="fake-hardware,redfish",
        enabled_power_interfaces="redfish,fake",
        enabled_management_interfaces="redfish,fake",
    )
    procs.wait_for_log(log, "serving RPC", conductor)
    node = db_api.create_node(
        {
            "driver": "redfish",
            "driver_info": {
                "redfish_address": silent_bmc,
                "redfish_system_id": "/redfish/v1/Systems/1",
                "redfish_username": "admin",
                "redfish_password": "secret",
            },
        }
    )
    # The test's own client on the conductor's exchange; the call returns once the lock is taken
    # and the power change is handed to a worker thread, which then hangs on the silent BMC.
    rpc.get_transport(CONF, url=procs.RABBIT_URL).cleanup()  # registers control_exchange
    CONF.set_override("control_exchange", cluster.exchange)
    transport = rpc.get_transport(CONF, url=procs.RABBIT_URL)
    try:
        client = messaging.get_rpc_client(
            transport, messaging.Target(topic=rpc.CONDUCTOR_TOPIC, server=host), timeout=30
        )
        client.call({}, "change_power_state", node_ident=node.uuid, target="power on", timeout=None)
    finally:
        transport.cleanup()
        CONF.clear_override("control_exchange")
    held = db_api.get_node(node.uuid)
    assert held.reservation == host and held.target_power_state == "power on", cluster.logs()
    time.sleep(1.0)  # the worker is inside the BMC call now
    assert db_api.get_node(node.uuid).reservation == host

    _signal_and_time(conductor, signum, cluster.logs)
    text = procs.read(log)
    assert f"Received {signal.Signals(signum).name}, stopping" in text
    assert f"kiln-conductor {host} stopped" in text
    after = db_api.get_node(node.uuid)
    assert after.reservation is None
    assert after.target_power_state is None
    assert f"conductor {host} stopped" in (after.last_error or ""), after.last_error
    assert db_api.get_conductor(host).online is False


@SIGNALS
def test_agent_stops_promptly_while_it_heartbeats(cluster, signum) -> None:
    conductor, _ = cluster.conductor(f"ft-stop-{uuid.uuid4().hex[:6]}")
    agent, log = cluster.agent()
    procs.wait_for(
        lambda: any(n.last_heartbeat_at for n in db_api.list_nodes()), 60, "a heartbeat", (conductor, agent)
    )
    _signal_and_time(agent, signum, cluster.logs)
    text = procs.read(log)
    assert f"Received {signal.Signals(signum).name}, stopping" in text
    assert "kiln-agent stopped" in text


@SIGNALS
def test_agent_stops_promptly_while_no_conductor_answers(cluster, signum) -> None:
    """Without a conductor the agent retries its lookup (a 5 s call, then a back-off): a signal ends it."""
    agent, log = cluster.agent()
    procs.wait_for_log(log, "failed (attempt 1)", agent, 60)
    _signal_and_time(agent, signum, cluster.logs)
    assert "kiln-agent stopped" in procs.read(log)
