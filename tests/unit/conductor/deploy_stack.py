"""A conductor and one simulated node's agent in one process, over oslo.messaging's in-memory bus.

The conductor is the real ConductorManager on a fresh SQLite database; the agent is the real
AgentEndpoint with the real StepRunner and steps, whose disk /dev/vdb is a file ([agent]disk_map).
Images are served by a real http.server on 127.0.0.1. Power, boot and management are "fake".
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import subprocess
import threading
import time
from typing import Any

from oslo_config import cfg

from agent.common import config, rpc, states
from agent.conductor import agent_commands
from agent.conductor.agent_client import AgentClient
from agent.conductor.drivers import driver_factory
from agent.conductor.manager import ConductorManager
from agent.db import api as db_api
from agent.inventory.collect import collect
from agent.node.conductor_client import ConductorClient
from agent.node.endpoints import AgentEndpoint
from agent.node.steps.context import StepContext
from agent.node.steps.runner import StepRunner
from tests.unit.schema import migrated_db

CONF = cfg.CONF
HOST = "deploy-conductor"
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")
VM_MAC = "52:54:00:12:34:56"
MIB = 1024 * 1024
DISK_SIZE = 128 * MIB

CONDUCTOR_OVERRIDES = {
    "host": HOST,
    "node_locked_retry_attempts": 10,
    "node_locked_retry_interval": 0.2,
    "enabled_deploy_interfaces": ["fake", "direct"],
    "enabled_inspect_interfaces": ["fake", "agent", "no-inspect"],
}


def make_image(path: str, size: int = 8 * MIB) -> str:
    """Write a raw image: an MBR with one partition, random content; return its sha256."""
    with open(path, "wb") as fh:
        fh.write(b"\0" * MIB)
        fh.write(os.urandom(size - MIB))
    subprocess.run(
        ["sfdisk", "--quiet", path],
        input="label: dos\nstart=2048, size=8192, type=83\n",
        text=True,
        check=True,
    )
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


class ImageServer:
    """http.server on 127.0.0.1 serving one directory, in a thread."""

    def __init__(self, directory: str) -> None:
        handler = functools.partial(_QuietHandler, directory=directory)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, name: str) -> str:
        """URL of file ``name`` in the served directory."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class SimAgent:
    """The agent side of one node: looks up, heartbeats on demand, runs steps on a file disk."""

    def __init__(self, transport, node_uuid: str, disk: str) -> None:
        self.inventory = collect(os.path.join(FIXTURES, "vm"), use_nvml=False)
        self.conductor = ConductorClient(transport, timeout=10)
        self.node_uuid = node_uuid
        self.token = ""
        self.lookup()
        context = StepContext(CONF, lambda: self.inventory, node_uuid=node_uuid)
        self.runner = StepRunner(context, report=self._report)
        endpoint = AgentEndpoint(node_uuid, lambda: self.token, lambda: self.inventory, runner=self.runner)
        self.server = rpc.get_server(transport, rpc.AGENT_TOPIC, node_uuid, [endpoint])
        self.server.start()
        self.disk = disk

    def lookup(self) -> None:
        """Look the node up, as the agent does at every start; keep the token when one is issued."""
        answer = self.conductor.lookup({}, [VM_MAC], self.inventory["system"]["uuid"], None)
        assert answer["node"]["uuid"] == self.node_uuid, answer
        self.token = answer["agent_token"] or self.token
        assert self.token, "the conductor issued no agent token and the agent holds none"

    def _report(self, step: str, result: dict) -> None:
        self.conductor.step_result({}, self.node_uuid, self.token, step, result)

    def heartbeat(self) -> None:
        """One heartbeat cast, as the agent's heartbeater sends it."""
        self.conductor.heartbeat({}, self.node_uuid, self.token, {"version": "test"})

    def report_inventory(self) -> dict:
        """report_inventory, as the agent sends it after lookup."""
        return self.conductor.report_inventory({}, self.node_uuid, self.token, self.inventory)

    def stop(self) -> None:
        """Stop the agent's RPC server and its step threads."""
        self.runner.context.stop.set()
        self.runner.join(5)
        rpc.stop_server(self.server, 5)


class Stack:
    """Database, conductor RPC server, image server and the node (fake-hardware, direct deploy)."""

    def __init__(self, tmp_path) -> None:
        config.register_opts(CONF)
        CONF([], project="kiln")
        for name, value in CONDUCTOR_OVERRIDES.items():
            CONF.set_override(name, value, group="conductor")
        driver_factory.reset()
        self.disk = str(tmp_path / "vdb.img")
        with open(self.disk, "wb") as fh:
            fh.truncate(DISK_SIZE)
        CONF.set_override("disk_map", {"/dev/vdb": self.disk}, group="agent")
        migrated_db(tmp_path)
        db_api.register_conductor(HOST, ["fake-hardware"])
        self.transport = rpc.get_transport(CONF, url="kombu+memory:////")
        self.manager = ConductorManager(HOST)
        self.server = rpc.get_server(self.transport, rpc.CONDUCTOR_TOPIC, HOST, [self.manager])
        self.server.start()
        agent_commands.set_agent_client(AgentClient(self.transport, timeout=10))
        self.images = str(tmp_path / "images")
        os.makedirs(self.images)
        self.image_sha = make_image(os.path.join(self.images, "disk.raw"))
        self.http = ImageServer(self.images)
        self.node = db_api.create_node(
            {
                "name": "sim-01",
                "driver": "fake-hardware",
                "deploy_interface": "direct",
                "inspect_interface": "agent",
                "boot_interface": "fake",
                "management_interface": "fake",
                "power_interface": "fake",
                "network_interface": "noop",
                "provision_state": states.AVAILABLE,
                "power_state": states.POWER_OFF,
            }
        )
        db_api.create_port({"address": VM_MAC, "node_id": self.node.id, "pxe_enabled": True})
        self.agent: SimAgent | None = None

    def set_image(self, name: str = "disk.raw", checksum: str | None = None, **extra: Any) -> None:
        """Point the node's instance_info at an image of the image server."""
        info = {"image_source": self.http.url(name), "image_checksum": checksum or self.image_sha, **extra}
        db_api.update_node(self.node.uuid, {"instance_info": info})

    def boot_agent(self) -> SimAgent:
        """What power-on does to a simulated node: its agent starts and looks up (a new token per boot)."""
        if self.agent is None:
            self.agent = SimAgent(self.transport, self.node.uuid, self.disk)
        else:
            self.agent.lookup()
        return self.agent

    def node_now(self):
        """The node as stored now."""
        return db_api.get_node(self.node.uuid)

    def _rest_in(self, wanted: tuple[str, ...], timeout: float, interval: float, between) -> Any:
        deadline = time.monotonic() + timeout
        node = self.node_now()
        while time.monotonic() < deadline:
            node = self.node_now()
            if node.provision_state in wanted and node.reservation is None:
                return node
            between(node)
            time.sleep(interval)
        raise AssertionError(
            f"node stayed in {node.provision_state} (reservation {node.reservation}, "
            f"last_error {node.last_error!r}); wanted {wanted}"
        )

    def wait_state(self, *wanted: str, timeout: float = 20.0):
        """Wait until the node rests in one of ``wanted`` (unlocked); return it."""
        return self._rest_in(wanted, timeout, 0.05, lambda node: None)

    def drive(self, *wanted: str, timeout: float = 30.0):
        """Heartbeat like a live agent until the node rests in one of ``wanted``; return it."""

        def beat(node) -> None:
            if node.reservation is None and self.agent is not None:
                self.agent.heartbeat()

        return self._rest_in(wanted, timeout, 0.1, beat)

    def close(self) -> None:
        """Stop everything and undo the option overrides."""
        if self.agent is not None:
            self.agent.stop()
        rpc.stop_server(self.server, 5)
        self.http.close()
        agent_commands.set_agent_client(None)
        self.transport.cleanup()
        db_api.dispose()
        for name in CONDUCTOR_OVERRIDES:
            CONF.clear_override(name, group="conductor")
        driver_factory.reset()
        CONF.clear_override("disk_map", group="agent")
