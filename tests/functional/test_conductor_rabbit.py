"""kiln-conductor and kiln-agent as separate processes over the real RabbitMQ and PostgreSQL.

Each test gets a throwaway PostgreSQL database and its own RabbitMQ exchange; the test that stops
RabbitMQ stops a node of its own, never the shared one. The agent reads a copy of the hgx-h100
fixture tree, which the tests edit to make the hardware change.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest
from oslo_config import cfg

from agent.common import config, exception, row_dicts, rpc
from agent.conductor import hash_ring, heartbeats
from agent.conductor import rpcapi as conductor_rpcapi
from agent.db import api as db_api
from agent.node.conductor_client import ConductorClient
from tests.functional import procs
from tests.unit.node.conftest import clone_tree, replace_file

CONF = cfg.CONF
HGX = Path(__file__).resolve().parents[1] / "fixtures" / "sysfs" / "hgx-h100"
HGX_SYSTEM_UUID = "9a5b2c00-1d2e-11ee-8000-3cecef123456"

pytestmark = [
    pytest.mark.skipif(not procs.reachable(5672), reason="RabbitMQ is not listening on 127.0.0.1:5672"),
    pytest.mark.skipif(not procs.reachable(5432), reason="PostgreSQL is not listening on 127.0.0.1:5432"),
    pytest.mark.skipif(not HGX.is_dir(), reason=f"fixture tree {HGX} is missing"),
]


class Cluster:
    """One test's database, exchange, config files and processes."""

    def __init__(self, tmp: Path, db_url: str, transport_url: str = procs.RABBIT_URL) -> None:
        self.tmp = tmp
        self.db_url = db_url
        self.transport_url = transport_url
        self.exchange = f"kiln-ft-{uuid.uuid4().hex[:8]}"
        self.procs: list = []
        self.root = clone_tree(str(HGX), str(tmp / "root"))

    def _common(self) -> dict:
        return {
            "DEFAULT": {
                "transport_url": self.transport_url,
                "control_exchange": self.exchange,
                "state_path": self.tmp,
            },
            "database": {"connection": self.db_url},
        }

    def conductor(self, host: str, **options) -> tuple:
        """Start kiln-conductor ``host``; return (process, log path)."""
        sections = self._common()
        sections["conductor"] = {
            "host": host,
            "heartbeat_interval": 1,
            "heartbeat_timeout": 4,
            "hash_ring_reset_interval": 1,
            "agent_heartbeat_interval": 1,
            "agent_heartbeat_timeout": 6,
            "node_locked_retry_interval": 0.2,
            **options,
        }
        conf = procs.write_conf(self.tmp / f"{host}.conf", sections)
        if not self.procs:
            procs.dbsync(conf)
        log = self.tmp / f"{host}.log"
        proc = procs.start("agent.cmd.conductor", conf, log)
        self.procs.append(proc)
        procs.wait_for(
            lambda: any(c.hostname == host for c in db_api.get_online_conductors(4)),
            60,
            f"conductor {host} to register",
            (proc,),
        )
        return proc, log

    def agent(self) -> tuple:
        """Start kiln-agent on the copied tree; return (process, log path)."""
        sections = self._common()
        sections["inventory"] = {"use_nvml": "false"}
        sections["agent"] = {
            "root": self.root,
            "state_dir": self.tmp / "agent-state",
            "lookup_timeout": 5,
            "report_timeout": 5,
            "backoff_initial": 0.5,
            "backoff_max": 2,
            "watch_interval": 0.5,
        }
        conf = procs.write_conf(self.tmp / "agent.conf", sections)
        log = self.tmp / "agent.log"
        proc = procs.start("agent.cmd.agent", conf, log)
        self.procs.append(proc)
        return proc, log

    def logs(self) -> str:
        """Every log of this test, for assertion messages."""
        return "\n".join(f"--- {p.name}\n{procs.read(p)[-4000:]}" for p in sorted(self.tmp.glob("*.log")))

    def close(self) -> None:
        """Stop every process still running."""
        for proc in self.procs:
            procs.stop(proc, 15)


@pytest.fixture
def cluster(tmp_path, request):
    """A Cluster on a throwaway database; the test process reads the same database.

    Its RabbitMQ is the shared one, or the test's own when the test also asks for private_rabbit.
    """
    config.register_opts(CONF)
    CONF([], project="kiln")
    CONF.set_override("heartbeat_timeout", 4, group="conductor")  # as the conductors: the ring agrees
    rabbit_url = (
        request.getfixturevalue("private_rabbit").url
        if "private_rabbit" in request.fixturenames
        else procs.RABBIT_URL
    )
    with procs.throwaway_postgres() as url:
        db_api.configure(url)
        c = Cluster(tmp_path, url, rabbit_url)
        try:
            yield c
        finally:
            c.close()
            db_api.dispose()
            CONF.clear_override("heartbeat_timeout", group="conductor")


@pytest.fixture
def transport(cluster):
    """A RabbitMQ transport of the test process on the cluster's exchange."""
    rpc.get_transport(CONF, url=cluster.transport_url).cleanup()  # registers control_exchange
    CONF.set_override("control_exchange", cluster.exchange)
    t = rpc.get_transport(CONF, url=cluster.transport_url)
    yield t
    t.cleanup()
    CONF.clear_override("control_exchange")


def _discovered_node():
    node = db_api.get_node_by_system_uuid(HGX_SYSTEM_UUID)
    if not db_api.get_node_inventory(node.id):
        return None
    # Read the node again: the report stores inventory and node fields in one transaction, which
    # may have committed between the two reads above.
    return db_api.get_node(node.uuid)


def _history(node) -> list[dict]:
    return db_api.list_inventory_history(node.id)


def _carrier_change(node, nic: str):
    for entry in _history(node):
        change = ((entry["changes"] or {}).get("changed") or {}).get("nics", {}).get(nic)
        if change and "carrier" in change:
            return change["carrier"]
    return None


def test_agent_and_conductor_over_rabbitmq_and_postgresql(private_rabbit, cluster, transport) -> None:
    conductor, _ = cluster.conductor("ft-cond-a")
    agent, agent_log = cluster.agent()
    live = (conductor, agent)

    # Discovery and the first inventory: stored with properties and traits.
    node = procs.wait_for(_discovered_node, 90, "the agent's node and inventory", live)
    assert node.provision_state == "enroll"
    assert node.name == "gpu-node-01"
    assert node.agent_token_hash and len(node.agent_token_hash) == 64
    assert {"CUSTOM_GPU_H100_SXM5_80GB", "CUSTOM_GPU_COUNT_8", "CUSTOM_NVSWITCH"} <= set(node.traits)
    assert node.properties["cpus"] == 224 and node.properties["memory_mb"] == 2097152
    assert len(db_api.get_node_inventory(node.id)["gpus"]) == 8
    assert "a0:88:c2:4e:3f:10" in {p.address for p in db_api.list_ports(node_id=node.id)}

    # Heartbeats are recorded, and keep coming.
    first = procs.wait_for(lambda: db_api.get_node(node.uuid).last_heartbeat_at, 30, "a heartbeat", live)
    procs.wait_for(
        lambda: db_api.get_node(node.uuid).last_heartbeat_at > first, 30, "a later heartbeat", live
    )

    # A forged token is rejected, logged, and nothing is stored.
    reports = len(_history(node))
    api = ConductorClient(transport, timeout=15)
    with pytest.raises(exception.InvalidAgentToken):
        api.report_inventory({}, node.uuid, "forged-token", {"cpu": {}}, None)
    assert len(_history(node)) == reports
    assert "wrong agent token" in procs.read(cluster.tmp / "ft-cond-a.log")
    api.step_result({}, node.uuid, "forged-token", "erase_devices", {"status": "succeeded"})  # a cast
    procs.wait_for(
        lambda: f"Rejected step_result from node {node.uuid}" in procs.read(cluster.tmp / "ft-cond-a.log"),
        30,
        "the forged step_result to be logged",
        live,
    )

    # Hardware change: a NIC loses its carrier; the change is reported within seconds.
    replace_file(os.path.join(cluster.root, "sys", "class", "net", "enp25s0np0", "carrier"), "0\n")
    change = procs.wait_for(lambda: _carrier_change(node, "enp25s0np0"), 60, "the carrier change", live)
    assert change == {"old": True, "new": False}

    # RabbitMQ stops; meanwhile another NIC loses its carrier. After the restart the report arrives.
    private_rabbit.stop()
    try:
        replace_file(os.path.join(cluster.root, "sys", "class", "net", "enp43s0np0", "carrier"), "0\n")
        procs.wait_for(
            lambda: "report_inventory failed" in procs.read(agent_log),
            90,
            "the agent to retry its report",
            live,
        )
    finally:
        private_rabbit.start()
    change = procs.wait_for(
        lambda: _carrier_change(node, "enp43s0np0"), 180, "the report after the restart", live
    )
    assert change == {"old": True, "new": False}
    beat = db_api.get_node(node.uuid).last_heartbeat_at
    procs.wait_for(
        lambda: db_api.get_node(node.uuid).last_heartbeat_at > beat, 60, "heartbeats after restart", live
    )
    assert db_api.get_node(node.uuid).fault is None

    # Clean stops.
    assert procs.stop(agent) == 0, cluster.logs()
    assert procs.stop(conductor) == 0, cluster.logs()
    assert db_api.get_conductor("ft-cond-a").online is False


def test_two_conductors_one_killed(cluster, transport) -> None:
    a, _ = cluster.conductor("ft-cond-a")
    b, _ = cluster.conductor("ft-cond-b")
    agent, _ = cluster.agent()
    node = procs.wait_for(_discovered_node, 90, "the agent's node and inventory", (a, b, agent))
    procs.wait_for(lambda: db_api.get_node(node.uuid).last_heartbeat_at, 30, "a heartbeat", (a, b, agent))

    ring = hash_ring.HashRingManager(reset_interval=0)
    owner = ring.get_conductor_for(node)
    victim, survivor = (a, "ft-cond-b") if owner == "ft-cond-a" else (b, "ft-cond-a")
    rpcapi = conductor_rpcapi.ConductorAPI(transport=transport, timeout=15, ring=ring)
    updated = rpcapi.update_node({}, row_dicts.node_to_dict(node), {"extra": {"rack": "r1"}})
    assert updated["extra"] == {"rack": "r1"}

    # The managing conductor dies holding the node's lock.
    db_api.reserve_node(owner, node.uuid)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    live = (a if victim is b else b, agent)
    procs.wait_for(
        lambda: db_api.get_node(node.uuid).reservation is None, 30, "the dead lock to be released", live
    )
    procs.wait_for(
        lambda: ring.get_conductor_for(node) == survivor, 30, "the ring to drop the dead conductor"
    )

    # API calls now go to the survivor.
    updated = rpcapi.update_node({}, row_dicts.node_to_dict(node), {"extra": {"rack": "r2"}})
    assert updated["extra"] == {"rack": "r2"}

    # The survivor does the node's periodic work: the agent stops, the node is flagged.
    assert procs.stop(agent) == 0
    flagged = procs.wait_for(
        lambda: db_api.get_node(node.uuid).fault == heartbeats.HEARTBEAT_FAULT, 60, "the heartbeat fault"
    )
    assert flagged
    assert "has not sent a heartbeat" in db_api.get_node(node.uuid).last_error
    assert f"Node {node.uuid}" in procs.read(cluster.tmp / f"{survivor}.log")


def test_heartbeats_served_by_a_child_process_and_taken_back_when_it_dies(cluster, transport) -> None:
    """kiln-conductor forks its heartbeat process; if it dies, the conductor serves heartbeats itself."""
    import psutil

    conductor, log = cluster.conductor("ft-cond-a")
    agent, _ = cluster.agent()
    live = (conductor, agent)
    node = procs.wait_for(_discovered_node, 90, "the agent's node and inventory", live)
    children = procs.wait_for(
        lambda: psutil.Process(conductor.pid).children(), 30, "the heartbeat process", live
    )
    assert len(children) == 1
    child = children[0]
    assert f"heartbeats on kiln.conductor.heartbeat served by process {child.pid}" in procs.read(log)

    first = procs.wait_for(lambda: db_api.get_node(node.uuid).last_heartbeat_at, 30, "a heartbeat", live)
    child.send_signal(signal.SIGKILL)
    procs.wait_for(
        lambda: "heartbeats are served in the conductor's own process" in procs.read(log),
        30,
        "the conductor to take heartbeats back",
        live,
    )
    assert psutil.Process(conductor.pid).children() == []
    procs.wait_for(
        lambda: db_api.get_node(node.uuid).last_heartbeat_at > first,
        30,
        "a heartbeat after the takeover",
        live,
    )
    assert db_api.get_node(node.uuid).fault is None


def test_conductor_stop_stops_its_heartbeat_process(cluster, transport) -> None:
    import psutil

    conductor, _ = cluster.conductor("ft-cond-a")
    (child,) = procs.wait_for(lambda: psutil.Process(conductor.pid).children(), 30, "the heartbeat process")
    assert procs.stop(conductor) == 0
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
