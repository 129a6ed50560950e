"""The step runner and run_step/get_step_status over RPC (in-process kombu memory transport)."""

from __future__ import annotations

import threading
import uuid

import pytest
from oslo_messaging.rpc.dispatcher import ExpectedException

from agent.common import exception, rpc
from agent.conductor.agent_client import AgentClient
from agent.node.backoff import Backoff
from agent.node.conductor_client import ConductorClient
from agent.node.endpoints import AgentEndpoint
from agent.node.steps import runner as runner_mod
from agent.node.steps.errors import StepError
from agent.node.steps.runner import AgentBusy, StepRunner, UnknownStep
from tests.unit.node.recorder import RecordingConductor
from tests.unit.node.steps.helpers import digest, make_raw_image

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
TOKEN = "tok-" + uuid.uuid4().hex
FAST = Backoff(0.01, 1.0, 0.01, 0.0)


@pytest.fixture
def wired(transport, topic, ctx):
    """A recording conductor and an agent endpoint with a StepRunner, both served over the transport."""
    conductor = RecordingConductor(NODE, TOKEN)
    csrv = rpc.get_server(transport, topic, "c1", [conductor])
    csrv.start()
    capi = ConductorClient(transport, topic=topic)
    runner = StepRunner(
        ctx, report=lambda step, result: capi.step_result({}, NODE, TOKEN, step, result), backoff=FAST
    )
    endpoint = AgentEndpoint(NODE, lambda: TOKEN, ctx.inventory, runner=runner)
    agent_topic = f"kiln.agent.test-{uuid.uuid4().hex[:8]}"
    asrv = rpc.get_server(transport, agent_topic, NODE, [endpoint])
    asrv.start()
    yield conductor, AgentClient(transport, topic=agent_topic, timeout=10), runner
    runner.join(10)
    rpc.stop_server(asrv, 5)
    rpc.stop_server(csrv, 5)


def test_write_image_over_rpc_reports_step_result(wired, server, images_dir, disks):
    conductor, api, runner = wired
    image = make_raw_image(str(images_dir / "disk.raw"), 8 << 20)
    sha = digest(image)
    started = api.run_step({}, NODE, TOKEN, "write_image", {"image_source": server.url("disk.raw"),
                                                             "image_os_hash_algo": "sha256",
                                                             "image_os_hash_value": sha})  # fmt: skip
    assert started["status"] == "running"
    assert started["step"] == "write_image"
    assert conductor.wait_for(lambda c: c.of("step_result"))
    sent = conductor.of("step_result")[0]
    assert sent["node_uuid"] == NODE
    assert sent["step"] == "write_image"
    result = sent["result"]
    assert result["command_id"] == started["command_id"]
    assert result["status"] == "succeeded"
    assert result["error"] is None
    assert result["result"]["checksum"] == f"sha256:{sha}"
    assert result["result"]["root_device"] == "/dev/vda"
    status = api.get_step_status({}, NODE, TOKEN, started["command_id"])
    assert status["status"] == "succeeded"
    assert status["result"]["bytes"] == 8 << 20


def test_failed_step_reports_its_error(wired, server, disks):
    conductor, api, runner = wired
    started = api.run_step({}, NODE, TOKEN, "write_image", {"image_source": server.url("missing.raw"),
                                                             "image_checksum": "a" * 64})  # fmt: skip
    assert conductor.wait_for(lambda c: c.of("step_result"))
    result = conductor.of("step_result")[0]["result"]
    assert result["status"] == "failed"
    assert result["error"].startswith("write_image: the image server answered HTTP 404")
    assert api.get_step_status({}, NODE, TOKEN, started["command_id"])["status"] == "failed"


def test_rpc_errors(wired):
    conductor, api, runner = wired
    with pytest.raises(
        exception.InvalidParameterValue,
        match="no step 'format_c'; known steps: burnin_gpus, clear_gpu_memory, collect_logs",
    ):
        api.run_step({}, NODE, TOKEN, "format_c", {})
    with pytest.raises(exception.InvalidAgentToken, match=NODE):
        api.run_step({}, NODE, "wrong-token", "power_off", {})
    with pytest.raises(exception.InvalidParameterValue, match="no command 'no-such-command'"):
        api.get_step_status({}, NODE, TOKEN, "no-such-command")


def test_busy_agent_answers_invalid_state(ctx):
    release = threading.Event()
    runner = StepRunner(ctx, steps={"slow": lambda ctx, args: {"ok": release.wait(30)}})
    endpoint = AgentEndpoint(NODE, lambda: TOKEN, ctx.inventory, runner=runner)
    endpoint.run_step({}, TOKEN, "slow", {})
    with pytest.raises(ExpectedException) as err:
        endpoint.run_step({}, TOKEN, "slow", {})
    assert isinstance(err.value.exc_info[1], exception.InvalidState)
    assert f"agent on node {NODE} is busy" in str(err.value.exc_info[1])
    release.set()
    runner.join(10)


def test_one_step_at_a_time_and_status_while_running(ctx):
    release = threading.Event()

    def slow(ctx, args):
        release.wait(30)
        return {"slept": True}

    runner = StepRunner(ctx, steps={"slow": slow, **runner_mod.STEPS})
    first = runner.start("slow", {})
    assert runner.status(first["command_id"]) == {"command_id": first["command_id"], "step": "slow",
                                                  "status": "running"}  # fmt: skip
    with pytest.raises(AgentBusy, match=f"step slow \\(command {first['command_id']}\\) is still running"):
        runner.start("power_off", {})
    release.set()
    runner.join(10)
    done = runner.status(first["command_id"])
    assert done["status"] == "succeeded"
    assert done["result"] == {"slept": True}
    assert runner.start("power_off", {})["status"] == "running"  # free again
    runner.join(10)


def test_result_retried_until_delivered(ctx):
    attempts: list[dict] = []

    def flaky_report(step, result):
        attempts.append(result)
        if len(attempts) < 3:
            raise ConnectionError("broker unreachable")

    runner = StepRunner(ctx, report=flaky_report, backoff=FAST)
    runner.start("power_off", {})
    runner.join(10)
    assert len(attempts) == 3
    assert attempts[-1]["status"] == "succeeded"
    assert attempts[-1]["result"] == {"action": "power_off", "performed": False, "simulated": True}


def test_results_are_bounded(ctx):
    runner = StepRunner(ctx, keep=2)
    ids = []
    for _ in range(3):
        ids.append(runner.start("get_root_device", {})["command_id"])
        runner.join(10)
    with pytest.raises(UnknownStep):
        runner.status(ids[0])
    assert runner.status(ids[2])["result"]["root_device"] == "/dev/vda"  # vdb is under 4 GiB


def test_unexpected_exception_is_reported(ctx):
    def broken(ctx, args):
        raise KeyError("boom")

    runner = StepRunner(ctx, steps={"broken": broken})
    cid = runner.start("broken", {})["command_id"]
    runner.join(10)
    assert runner.status(cid)["error"] == "broken: unexpected KeyError: 'boom'"
    with pytest.raises(StepError, match="args must be an object"):
        runner.start("broken", [1])
