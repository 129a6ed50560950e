"""The conductor's metrics, fed by the real hooks: task state changes, inventory diffs, an RPC server."""

from __future__ import annotations

import datetime

import oslo_messaging as messaging
import pytest
from oslo_config import cfg

from agent.common import rpc, states
from agent.conductor import task_manager
from agent.db import api as db_api
from agent.db.models import utcnow
from agent.metrics import conductor as metrics
from agent.node.changes import diff_inventory
from tests.unit.metrics.conftest import scrape, value

PHASE = "kiln_provision_phase_duration_seconds"


def _acquire(ident: str):
    return task_manager.acquire({}, ident, host="cond-metrics", retry_attempts=1)


def _entered(uuid: str, seconds_ago: float) -> None:
    db_api.update_node(uuid, {"provision_updated_at": utcnow() - datetime.timedelta(seconds=seconds_ago)})


def test_phase_durations_are_observed_when_a_node_leaves_a_deploy_phase(db) -> None:
    node = db_api.create_node({"driver": "fake-hardware", "provision_state": states.DEPLOYING})
    _entered(node.uuid, 90)
    before = scrape(metrics.REGISTRY)
    with _acquire(node.uuid) as task:
        task.process_event("wait")  # deploying -> wait call-back
    _entered(node.uuid, 400)
    with _acquire(node.uuid) as task:
        task.process_event("resume")  # wait call-back -> deploying
        task.process_event("done")  # deploying -> active, at once
    after = scrape(metrics.REGISTRY)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    deploying = {"operation": "deploy", "phase": states.DEPLOYING, "result": "ok"}
    waiting = {"operation": "deploy", "phase": states.DEPLOYWAIT, "result": "ok"}
    assert delta(PHASE + "_count", **deploying) == 2
    assert delta(PHASE + "_bucket", le="60.0", **deploying) == 1  # the instant one
    assert delta(PHASE + "_bucket", le="120.0", **deploying) == 2
    assert 90 <= delta(PHASE + "_sum", **deploying) < 100
    assert delta(PHASE + "_bucket", le="300.0", **waiting) == 0
    assert delta(PHASE + "_bucket", le="600.0", **waiting) == 1
    assert delta("kiln_provision_failures_total", operation="deploy") == 0


def test_a_failed_clean_counts_as_a_failure_and_its_phase_as_failed(db) -> None:
    node = db_api.create_node({"driver": "fake-hardware", "provision_state": states.CLEANWAIT})
    stable = db_api.create_node({"driver": "fake-hardware"})
    _entered(node.uuid, 30)
    before = scrape(metrics.REGISTRY)
    with _acquire(node.uuid) as task:
        task.process_event("fail")
    with _acquire(stable.uuid) as task:
        task.process_event("manage")  # enroll is no operation's phase: nothing observed
    after = scrape(metrics.REGISTRY)

    failed = {"operation": "clean", "phase": states.CLEANWAIT, "result": "failed"}
    assert value(after, PHASE + "_count", **failed) - value(before, PHASE + "_count", **failed) == 1
    assert (
        value(after, "kiln_provision_failures_total", operation="clean")
        - value(before, "kiln_provision_failures_total", operation="clean")
        == 1
    )
    assert not [k for k in after if k[0].startswith(PHASE) and ("phase", states.ENROLL) in k[1]]


def test_inventory_drift_is_counted_by_kind_and_device() -> None:
    old = {
        "gpus": [
            {"pci_address": "0000:01:00.0", "serial": "A"},
            {"pci_address": "0000:02:00.0", "serial": "B"},
        ],
        "disks": [{"kernel_name": "nvme0n1", "size": 1}],
    }
    new = {
        "gpus": [{"pci_address": "0000:01:00.0", "serial": "C"}],
        "disks": [{"kernel_name": "nvme0n1", "size": 1}, {"kernel_name": "nvme1n1", "size": 2}],
    }
    before = scrape(metrics.REGISTRY)
    metrics.inventory_changes(diff_inventory(old, new))
    for garbage in (None, "x", {"added": []}, {"added": {"gpus": 5, "toasters": [1, 2]}}):
        metrics.inventory_changes(garbage)
    after = scrape(metrics.REGISTRY)

    def delta(kind: str, device: str) -> float:
        name = "kiln_inventory_changes_total"
        return value(after, name, kind=kind, device=device) - value(before, name, kind=kind, device=device)

    assert delta("removed", "gpus") == 1
    assert delta("changed", "gpus") == 1
    assert delta("added", "disks") == 1
    assert delta("added", "gpus") == 0
    assert not [k for k in after if ("device", "toasters") in k[1]]


class _Endpoint:
    target = messaging.Target(version="1.0")

    def ping(self, ctxt: dict, value: int) -> int:
        return value

    def broken(self, ctxt: dict) -> None:
        raise ValueError("broken on purpose")


@pytest.fixture
def timed_server():
    """An RPC server on the in-memory bus, timed by the conductor's hook; yields a client of it."""
    cfg.CONF([], project="kiln")
    rpc.add_server_hook(metrics.instrument_rpc_server)
    transport = rpc.get_transport(cfg.CONF, url="kombu+memory:////")
    try:
        server = rpc.get_server(transport, "kiln.metrics-test", "host-a", [_Endpoint()])
    finally:
        rpc.remove_server_hook(metrics.instrument_rpc_server)
    server.start()
    yield rpc.get_client(transport, "kiln.metrics-test", server="host-a", timeout=10)
    rpc.stop_server(server, 10)
    transport.cleanup()


def test_rpc_calls_are_timed_by_method(timed_server) -> None:
    name = "kiln_rpc_duration_seconds_count"
    before = scrape(metrics.REGISTRY)
    assert timed_server.call({}, "ping", value=3) == 3
    assert timed_server.call({}, "ping", value=4) == 4
    with pytest.raises(ValueError, match="broken on purpose"):
        timed_server.call({}, "broken")
    with pytest.raises((messaging.RemoteError, messaging.NoSuchMethod)):
        timed_server.call({}, "no_such_method_" + "x" * 40)
    after = scrape(metrics.REGISTRY)

    def delta(method: str, result: str) -> float:
        return value(after, name, method=method, result=result) - value(
            before, name, method=method, result=result
        )

    assert delta("ping", "ok") == 2
    assert delta("broken", "error") == 1
    assert delta("other", "error") == 1
    assert not [k for k in after if k[0] == name and ("method", "no_such_method_" + "x" * 40) in k[1]]
