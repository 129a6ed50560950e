"""RabbitMQ restarted in the middle of a deploy (a private node: the machine's shared one serves other
runs): kiln-api, kiln-conductor and kiln-agent reconnect on their own and the deploy completes."""

from __future__ import annotations

import time

import pytest

from tests.functional import procs
from tests.functional.faults.deploy_stack import WAIT, deploy_stack, enroll, logs

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tmp_path, private_rabbit):
    """The deploy stack on a private RabbitMQ node (yielded as stack["rabbit"]), SQLite database."""
    with deploy_stack(
        tmp_path, private_rabbit.url, f"sqlite:///{tmp_path}/kiln.sqlite", ("conductor-r",)
    ) as stack:
        stack["rabbit"] = private_rabbit
        yield stack


def test_rabbit_restarted_during_deploy(stack) -> None:
    bm = stack["conn"].baremetal
    rabbit = stack["rabbit"]
    node = enroll(stack, bm, automated_clean=False)
    url, sha = stack["image"]
    bm.patch_node(
        node,
        [
            {"op": "add", "path": "/instance_info/image_source", "value": url},
            {"op": "add", "path": "/instance_info/image_checksum", "value": sha},
        ],
    )
    bm.set_node_provision_state(node, "provide", wait=True, timeout=WAIT)
    # The image download is held: the agent is connected and in the middle of write_image when
    # RabbitMQ goes down, and the deploy cannot end before the restart.
    gate = stack["image_gate"]
    gate.close()
    bm.set_node_provision_state(node, "active")
    try:
        assert gate.asked.wait(WAIT), f"the agent never downloaded the image{logs(stack)}"
        started = time.monotonic()
        rabbit.stop()
        time.sleep(3)
        rabbit.start()
        down = time.monotonic() - started
    finally:
        gate.release()
    try:
        deployed = bm.wait_for_nodes_provision_state(
            [node], "active", timeout=WAIT, abort_on_failed_state=False
        )[0]
    except Exception as exc:
        raise AssertionError(f"{exc}: {bm.get_node(node.id).provision_state}{logs(stack)}") from None
    print(f"RabbitMQ down {down:.0f} s; deployed {time.monotonic() - started:.0f} s after the restart began")
    assert deployed.provision_state == "active", deployed.last_error
    assert stack["node"].agent_runs >= 1
    # The restart really cut every process's connection, and each reconnected on its own.
    unreachable = f"AMQP server on 127.0.0.1:{rabbit.port} is unreachable"
    for log in ("agent.log", "conductor-conductor-r.log"):
        assert unreachable in procs.read(stack["tmp"] / log), log
    # kiln-api's RPC client works again too (a change goes through the conductor).
    patched = bm.patch_node(node, [{"op": "add", "path": "/extra/after_restart", "value": "yes"}])
    assert patched.extra["after_restart"] == "yes"
