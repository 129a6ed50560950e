"""kiln-agent in its own process against a real RabbitMQ node of this test's own.

The conductor side is a recording test endpoint (tests.unit.node.recorder) in this process,
on a topic of this test only. Midway the RabbitMQ node is stopped while the hardware changes,
then started again: the agent reconnects by itself and the change report still arrives. The
node is private (tests.functional.faults.private) so that the machine's shared broker, which
other tests use at the same time, never stops.
"""

from __future__ import annotations

import os
import signal
import uuid

import oslo_messaging as messaging
import pytest

from agent.common import exception, rpc
from agent.conductor.agent_client import AgentClient
from tests.functional import procs
from tests.unit.node.agent_process import start_agent, write_config
from tests.unit.node.conftest import clone_tree, replace_file
from tests.unit.node.recorder import RecordingConductor

HGX = os.path.join(os.path.dirname(__file__), "..", "fixtures", "sysfs", "hgx-h100")


@pytest.fixture
def transport(private_rabbit):
    """The test's transport on the private node."""
    t = procs.rabbit_transport(private_rabbit.url)
    yield t
    t.cleanup()


def _ping_within(api: AgentClient, conductor: RecordingConductor, seconds: float) -> str | None:
    """Ping the agent until it answers; its node UUID, or None after ``seconds``."""
    for _ in range(int(seconds / 5)):
        try:
            return api.ping({}, conductor.node_uuid, conductor.token)["node_uuid"]
        except messaging.MessagingTimeout:
            continue
    return None


@pytest.mark.skipif(not os.path.isdir(HGX), reason=f"fixture tree {HGX} is missing")
def test_agent_survives_a_broker_restart_without_losing_a_report(private_rabbit, transport, tmp_path):
    topic = f"kiln.conductor.ft-{uuid.uuid4().hex[:8]}"
    conductor = RecordingConductor(str(uuid.uuid4()), f"token-{uuid.uuid4().hex}", heartbeat_interval=1)
    server = rpc.get_server(transport, topic, "test-conductor", [conductor])
    server.start()
    root = clone_tree(HGX, str(tmp_path / "root"))
    conf = write_config(
        str(tmp_path / "kiln.conf"),
        private_rabbit.url,
        {
            "root": root,
            "state_dir": tmp_path / "state",
            "conductor_topic": topic,
            "lookup_timeout": 5,
            "report_timeout": 5,
            "backoff_initial": 0.5,
            "backoff_max": 2,
            "watch_interval": 0.5,
        },
    )
    log = str(tmp_path / "agent.log")
    proc = start_agent(conf, log)
    broker_stopped = False
    try:
        # Discovery, the first report and heartbeats.
        assert conductor.wait_for(lambda r: len(r.of("heartbeat")) >= 2, 90), procs.read(log)
        (lookup,) = conductor.of("lookup")
        assert lookup["system_uuid"] == "9a5b2c00-1d2e-11ee-8000-3cecef123456"
        assert lookup["bootif"] == "a0:88:c2:4e:3f:10"
        first = conductor.of("report_inventory")[0]
        assert first["changes"] is None
        assert len(first["inventory"]["gpus"]) == 8
        assert {n["name"] for n in first["inventory"]["nics"]} >= {"eno1", "enp25s0np0"}

        api = AgentClient(transport, timeout=15)
        assert api.ping({}, conductor.node_uuid, conductor.token)["node_uuid"] == conductor.node_uuid
        with pytest.raises(exception.InvalidAgentToken):
            api.ping({}, conductor.node_uuid, "forged")

        # Broker down; meanwhile a NIC loses its link. The report must wait and be re-sent.
        private_rabbit.stop()
        broker_stopped = True
        replace_file(os.path.join(root, "sys", "class", "net", "enp25s0np0", "carrier"), "0\n")
        beats_before = len(conductor.of("heartbeat"))
        with open(log, encoding="utf-8", errors="replace") as f:
            f.seek(0, os.SEEK_END)
            while "report_inventory failed" not in f.read():
                assert proc.poll() is None, procs.read(log)
                conductor.wait_for(lambda r: False, 0.5)
        private_rabbit.start()
        broker_stopped = False

        def changed(r) -> bool:
            return any(c["changes"] for c in r.of("report_inventory"))

        assert conductor.wait_for(changed, 120), procs.read(log)
        change = next(c["changes"] for c in conductor.of("report_inventory") if c["changes"])
        assert change["changed"]["nics"]["enp25s0np0"]["carrier"] == {"old": True, "new": False}
        assert conductor.wait_for(lambda r: len(r.of("heartbeat")) >= beats_before + 2, 60)
        # The agent's RPC server re-subscribes on its own reconnect schedule (up to
        # [oslo_messaging_rabbit]rabbit_interval_max); a call sent before that finds no queue.
        assert _ping_within(AgentClient(transport, timeout=5), conductor, 120) == conductor.node_uuid
        assert conductor.rejected == []

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "kiln-agent stopped" in procs.read(log)
    finally:
        if broker_stopped:
            private_rabbit.start()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rpc.stop_server(server, 10)
