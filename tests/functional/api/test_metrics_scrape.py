"""Prometheus scrapes of a real kiln-api and kiln-conductor (RabbitMQ, SQLite, the heartbeat process)."""

from __future__ import annotations

import urllib.request
import uuid

import oslo_messaging as messaging
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.functional import procs
from tests.functional.api_services import conductor_and_api

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}


def _scrape(url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _sum(samples: dict, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and want <= got)


def _wait_state(api: str, uuid_: str, state: str) -> None:
    def reached() -> bool:
        node = requests.get(f"{api}/v1/nodes/{uuid_}", headers=HEADERS, timeout=10).json()
        return node["provision_state"] == state and not node["target_provision_state"]

    procs.wait_for(reached, 60, f"node {uuid_} to reach {state}")


def test_scrape_api_and_conductor(tmp_path) -> None:
    exchange = f"kiln-test-{uuid.uuid4().hex[:8]}"
    port = procs.free_port()
    extra = {
        "DEFAULT": {"control_exchange": exchange},
        "conductor": {"metrics_port": port, "metrics_host": "127.0.0.1", "metrics_dir": tmp_path / "metrics"},
    }
    with conductor_and_api(tmp_path, "metrics-conductor", extra) as api:
        conductor = f"http://127.0.0.1:{port}/metrics"
        made = [
            requests.post(
                f"{api}/v1/nodes", json={"driver": "fake-hardware"}, headers=HEADERS, timeout=30
            ).json()
            for _ in range(2)
        ]
        ready = made[0]["uuid"]
        for verb, state in (("manage", "manageable"), ("provide", "available")):
            resp = requests.put(
                f"{api}/v1/nodes/{ready}/states/provision", json={"target": verb}, headers=HEADERS, timeout=30
            )
            assert resp.status_code == 202, resp.text
            _wait_state(api, ready, state)
        # A heartbeat with a wrong token: served (and refused) by the forked heartbeat process.
        transport = procs.rabbit_transport()
        try:
            target = messaging.Target(topic="kiln.conductor.heartbeat", exchange=exchange, version="1.0")
            client = messaging.get_rpc_client(transport, target)
            client.cast({}, "heartbeat", node_uuid=ready, agent_token="not-the-token", status={})
            procs.wait_for(
                lambda: _sum(_scrape(conductor), "kiln_rpc_duration_seconds_count", method="heartbeat") >= 1,
                30,
                "the heartbeat process's RPC timing on the conductor's endpoint",
            )
        finally:
            transport.cleanup()

        fleet = _scrape(f"{api}/metrics")
        own = _scrape(conductor)

    assert _sum(fleet, "kiln_nodes", provision_state="available", quarantined="false") == 1
    assert _sum(fleet, "kiln_nodes", provision_state="enroll") == 1
    assert _sum(fleet, "kiln_conductors", online="true") == 1
    assert _sum(fleet, "kiln_fleet_scrape_success") == 1
    assert _sum(fleet, "kiln_api_request_duration_seconds_count", method="POST", route="/v1/nodes") == 2
    assert (
        _sum(
            fleet,
            "kiln_api_request_duration_seconds_count",
            method="PUT",
            route="/v1/nodes/{node_ident}/states/provision",
            code="202",
        )
        == 2
    )
    assert _sum(own, "kiln_rpc_duration_seconds_count", method="create_node", result="ok") == 2
    assert _sum(own, "kiln_rpc_duration_seconds_count", method="change_provision_state") == 2
    assert (
        _sum(own, "kiln_provision_phase_duration_seconds_count", operation="verify", phase="verifying") == 1
    )
    assert _sum(own, "kiln_provision_phase_duration_seconds_count", operation="clean", phase="cleaning") >= 1
    assert _sum(own, "kiln_provision_failures_total") == 0
    # The conductor's metric files were written where configured (one set per process).
    assert len({p.name.rsplit("_", 1)[-1] for p in (tmp_path / "metrics").glob("*.db")}) >= 2
