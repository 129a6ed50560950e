"""kiln-demo --deploy: deploy the simulated VM node with the direct deploy interface, showing progress.

The image is a random raw file served over HTTP on 127.0.0.1; the node's /dev/vdb is a sparse file
([agent]disk_map). Power, boot and management are "fake": when the conductor powers the node on to
boot the agent, the demo stops the node's running agent and starts a ramdisk agent that can run
steps (write_image), as a PXE boot would.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import threading
import time
from typing import Any

from oslo_config import cfg

CONF = cfg.CONF
DEPLOY_TREE = "vm"
DEPLOY_DISK = "/dev/vdb"
IMAGE_SIZE = 8 * 1024 * 1024
DISK_SIZE = 128 * 1024 * 1024
NOT_AVAILABLE = "kiln-demo --deploy: not available: {why}"


def available() -> str | None:
    """Why the direct deploy cannot run here, or None when it can."""
    try:
        from agent.conductor.drivers import direct  # noqa: F401
        from agent.node.steps.runner import StepRunner  # noqa: F401
    except ImportError as exc:
        return f"the direct deploy (issue 5) is not in this kiln yet ({exc})"
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class RamdiskAgent:
    """What the node runs after a PXE boot: the agent endpoint with a step runner, heartbeating."""

    def __init__(self, transport, node_uuid: str, inventory: dict, interval: float) -> None:
        from agent.common import rpc
        from agent.node.conductor_client import ConductorClient
        from agent.node.daemon import lookup_macs
        from agent.node.endpoints import AgentEndpoint
        from agent.node.heartbeat import Heartbeater
        from agent.node.steps.context import StepContext
        from agent.node.steps.runner import StepRunner

        self.node_uuid = node_uuid
        self.conductor = ConductorClient(transport, timeout=10)
        # A freshly booted ramdisk looks up: the conductor cleared the node's token when it rebooted it.
        answer = self.conductor.lookup(
            {}, lookup_macs(inventory), (inventory.get("system") or {}).get("uuid"), None
        )
        token = self.token = answer.get("agent_token") or ""
        if answer.get("node", {}).get("uuid") != node_uuid or not token:
            raise RuntimeError(f"the ramdisk of node {node_uuid} got no agent token at lookup: {answer!r}")
        self.runner = StepRunner(
            StepContext(CONF, lambda: inventory, node_uuid=node_uuid, live=False), report=self._report
        )
        endpoint = AgentEndpoint(node_uuid, lambda: token, lambda: inventory, runner=self.runner)
        self.server = rpc.get_server(transport, rpc.AGENT_TOPIC, node_uuid, [endpoint])
        self.server.start()
        self.heartbeater = Heartbeater(self._beat, interval, 0.0)
        self.heartbeater.start()

    def _report(self, step: str, result: dict) -> None:
        self.conductor.step_result({}, self.node_uuid, self.token, step, result)

    def _beat(self) -> None:
        self.conductor.heartbeat({}, self.node_uuid, self.token, {"version": "kiln-demo ramdisk"})

    def stop(self) -> None:
        """Stop heartbeating, the steps and the RPC server."""
        from agent.common import rpc

        self.heartbeater.stop()
        self.runner.context.stop.set()
        self.runner.join(5)
        rpc.stop_server(self.server, 2)


def _image(directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    data = b"\0" * 512 + os.urandom(IMAGE_SIZE - 512)
    with open(os.path.join(directory, "demo.raw"), "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def run(demo: Any) -> bool:
    """Deploy the demo's VM node to "active"; say whether it got there."""
    why = available()
    node = next((n for n in demo.nodes if n.label == DEPLOY_TREE and n.node_uuid), None)
    if why is None and node is None:
        why = f"the {DEPLOY_TREE!r} fixture tree is not part of this run"
    if why is not None:
        demo.say(NOT_AVAILABLE.format(why=why))
        return True
    from agent.common import rpc
    from agent.conductor import agent_commands
    from agent.conductor.agent_client import AgentClient
    from agent.db import api as db_api

    work = os.path.join(demo.tmp, "deploy")
    sha = _image(os.path.join(work, "images"))
    disk = os.path.join(work, "vdb.img")
    with open(disk, "wb") as fh:
        fh.truncate(DISK_SIZE)
    demo.overrides.set("disk_map", {DEPLOY_DISK: disk}, "agent")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=work))
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="demo-images", daemon=True
    ).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/images/demo.raw"
    agent_commands.set_agent_client(AgentClient(demo.transport, timeout=10))
    api = rpc.get_client(demo.transport, rpc.CONDUCTOR_TOPIC, timeout=30)  # as kiln-api calls it
    ramdisk: RamdiskAgent | None = None
    demo.say(
        f"Deploying {node.label} ({node.node_uuid}): image {url} (sha256 {sha[:12]}...) to {DEPLOY_DISK}"
    )
    try:
        db_api.update_node(
            node.node_uuid,
            {
                "deploy_interface": "direct",
                "automated_clean": False,
                "instance_info": {"image_source": url, "image_checksum": sha, "image_disk_format": "raw"},
            },
        )
        for verb, wanted in (("manage", "manageable"), ("provide", "available")):
            api.call({}, "change_provision_state", node_ident=node.node_uuid, verb=verb)
            if not _wait(demo, node.node_uuid, {wanted}, 20):
                return False
        api.call({}, "change_provision_state", node_ident=node.node_uuid, verb="active")
        if not _wait(demo, node.node_uuid, {"wait call-back", "active"}, 30):
            return False
        # The fake power-on "PXE-boots" the node: its OS agent goes, the ramdisk agent comes up.
        node.agent.shutdown()
        demo.say(f"{demo.stamp()} {node.label:<12} powered on into the ramdisk agent")
        ramdisk = RamdiskAgent(demo.transport, node.node_uuid, node.inventory, 0.5)
        if not _wait(demo, node.node_uuid, {"active"}, 60):
            return False
        with open(disk, "rb") as fh:
            written = hashlib.sha256(fh.read(IMAGE_SIZE)).hexdigest()
        same = "matches" if written == sha else "DOES NOT match"
        head = f"the first {IMAGE_SIZE >> 20} MiB of {DEPLOY_DISK}"
        demo.say(f"{demo.stamp()} {node.label:<12} active; {head} {same} the image")
        return written == sha
    finally:
        if ramdisk is not None:
            ramdisk.stop()
        agent_commands.set_agent_client(None)
        httpd.shutdown()
        httpd.server_close()


def _wait(demo: Any, node_uuid: str, wanted: set[str], timeout: float) -> bool:
    """Print each provision state (and deploy step) the node passes through until one of ``wanted``."""
    from agent.db import api as db_api

    label = f"{DEPLOY_TREE:<12}"
    last = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        node = db_api.get_node(node_uuid)
        step = (node.driver_internal_info or {}).get("deploy_step") or {}
        step_name = step.get("step") if isinstance(step, dict) else None
        seen = (node.provision_state, step_name)
        if seen != last:
            shown = f" (step {step_name})" if step_name else ""
            demo.say(f"{demo.stamp()} {label} {node.provision_state}{shown}")
            last = seen
        if node.provision_state in wanted and node.reservation is None:
            return True
        if node.provision_state.endswith("failed"):
            demo.say(f"kiln-demo: deploying {node_uuid} failed: {node.last_error}")
            return False
        time.sleep(0.05)
    demo.say(f"kiln-demo: node {node_uuid} stayed in {last[0] if last else '?'} for {timeout:.0f} s")
    return False
