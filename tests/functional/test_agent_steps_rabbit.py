"""kiln-agent as its own process runs write_image over the machine's real RabbitMQ.

The conductor is the real ConductorManager on a SQLite database in this process, served on a
conductor topic of this test only; it discovers the node when the agent looks up. The agent reads a
copy of the HGX H100 fixture tree, and [agent]disk_map stands a file in for its root disk
/dev/nvme0n1. The image comes from a real http.server on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import uuid

import pytest
from oslo_config import cfg

from agent.common import exception, rpc
from agent.conductor.agent_client import AgentClient
from agent.db import api as db_api
from agent.db import migration
from agent.node.credentials import TokenStore
from tests.functional.procs import RABBIT_URL, rabbit_transport, reachable, read, stop, wait_for
from tests.unit.node.agent_process import start_agent, write_config
from tests.unit.node.conftest import clone_tree
from tests.unit.node.recorder import StepResultsSeen
from tests.unit.node.steps.helpers import (
    MIB,
    ImageServer,
    digest,
    make_disk,
    make_raw_image,
    read_range,
    table,
)

CONF = cfg.CONF
HGX = os.path.join(os.path.dirname(__file__), "..", "fixtures", "sysfs", "hgx-h100")
HGX_UUID = "9a5b2c00-1d2e-11ee-8000-3cecef123456"
HOST = "ft-steps-conductor"


@pytest.fixture
def conductor(tmp_path):
    """StepResultsSeen over RabbitMQ on a topic of this test; yields (manager, transport, topic)."""
    if not reachable(5672):
        pytest.skip("RabbitMQ is not listening on 127.0.0.1:5672 (start it: rabbitmq-server -detached)")
    transport = rabbit_transport()
    CONF.set_override("host", HOST, group="conductor")
    db_api.configure(f"sqlite:///{tmp_path}/kiln.sqlite")
    migration.upgrade()
    db_api.register_conductor(HOST, ["fake-hardware"])
    topic = f"kiln.conductor.ft-steps-{uuid.uuid4().hex[:8]}"
    manager = StepResultsSeen(HOST)
    server = rpc.get_server(transport, topic, HOST, [manager])
    server.start()
    try:
        yield manager, transport, topic
    finally:
        rpc.stop_server(server, 10)
        transport.cleanup()
        db_api.dispose()
        CONF.clear_override("host", group="conductor")


@pytest.mark.skipif(not os.path.isdir(HGX), reason=f"fixture tree {HGX} is missing")
def test_agent_process_writes_an_image_and_reports_the_result(conductor, tmp_path):
    manager, transport, topic = conductor
    images = tmp_path / "images"
    images.mkdir()
    image = make_raw_image(str(images / "disk.raw"), 8 * MIB)
    http = ImageServer(str(images))
    disk = make_disk(str(tmp_path / "nvme0n1.img"), 16 * MIB)
    state = tmp_path / "state"
    conf = write_config(
        str(tmp_path / "kiln.conf"),
        RABBIT_URL,
        {
            "root": clone_tree(HGX, str(tmp_path / "root")),
            "state_dir": state,
            "conductor_topic": topic,
            "lookup_timeout": 5,
            "report_timeout": 10,
            "backoff_initial": 0.5,
            "backoff_max": 2,
            "watch": "false",
            "disk_map": f"/dev/nvme0n1:{disk}",
        },
    )
    log = tmp_path / "agent.log"
    proc = start_agent(conf, str(log))
    try:
        node = wait_for(
            lambda: db_api.get_node_by_system_uuid(HGX_UUID), 90, "the agent's lookup (discovery)", (proc,)
        )
        wait_for(lambda: db_api.get_node_inventory(node.id), 60, "the first inventory report", (proc,))
        creds = wait_for(lambda: TokenStore(str(state)).load(), 30, "the stored agent token", (proc,))
        assert creds.node_uuid == node.uuid
        pinger = AgentClient(transport, timeout=3)
        wait_for(lambda: pinger.ping({}, node.uuid, creds.agent_token), 60, "the agent's RPC server", (proc,))

        api = AgentClient(transport, timeout=30)
        sha = digest(image, "sha512")
        args = {"image_source": http.url("disk.raw"), "image_os_hash_algo": "sha512",
                "image_os_hash_value": sha, "image_disk_format": "raw"}  # fmt: skip
        with pytest.raises(exception.InvalidAgentToken):
            api.run_step({}, node.uuid, "forged", "write_image", args)
        started = api.run_step({}, node.uuid, creds.agent_token, "write_image", args)
        assert started["status"] == "running" and started["step"] == "write_image"

        results = manager.wait_results(1, 120)
        assert results, read(log)
        (seen,) = results
        assert seen["node_uuid"] == node.uuid and seen["step"] == "write_image"
        result = seen["result"]
        assert result["command_id"] == started["command_id"]
        assert result["status"] == "succeeded", result["error"]
        assert result["result"]["root_device"] == "/dev/nvme0n1"
        assert result["result"]["bytes"] == 8 * MIB
        assert result["result"]["checksum"] == f"sha512:{sha}"
        done = api.get_step_status({}, node.uuid, creds.agent_token, started["command_id"])
        assert done["status"] == "succeeded"
        assert read_range(disk, 2 * MIB, 5 * MIB) == read_range(image, 2 * MIB, 5 * MIB)
        assert [p["name"] for p in table(disk)["partitions"]] == ["root"]

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, read(log)
        assert "kiln-agent stopped" in read(log)
    finally:
        stop(proc)
        http.close()
