"""kiln-api and kiln-conductor as real processes over RabbitMQ (127.0.0.1:5672) and SQLite or PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tests.functional import procs


@pytest.fixture(scope="module")
def kiln(tmp_path_factory):
    """Start a conductor and kiln-api; yield the API's base URL."""
    if not procs.reachable(5672):
        pytest.skip("RabbitMQ is not listening on 127.0.0.1:5672 (rabbitmq-server -detached)")
    tmp = tmp_path_factory.mktemp("kiln")
    port = procs.free_port()
    sections = {
        "DEFAULT": {
            "transport_url": procs.RABBIT_URL,
            "control_exchange": f"kiln-test-{uuid.uuid4().hex[:8]}",
            "state_path": tmp,
        },
        "database": {"connection": f"sqlite:///{tmp}/kiln.sqlite"},
        "conductor": {
            "host": "func-conductor",
            "heartbeat_interval": 2,
            "enabled_network_interfaces": "noop,flat",
        },
        "api": {"host_ip": "127.0.0.1", "port": port},
        # Networks a VIF may name (test_network_cli): one shared service network, two tenants'.
        "network": {"provisioning_network": "provision"},
        "network:provision": {"vlan_id": 100, "shared": "true"},
        "network:tenant-a": {"vlan_id": 210, "project": "project-a"},
        "network:tenant-b": {"vlan_id": 220, "project": "project-b"},
    }
    conf = procs.write_conf(tmp / "kiln.conf", sections)
    procs.dbsync(conf)
    conductor = procs.start("agent.cmd.conductor", conf, tmp / "conductor.log")
    api = None
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_for_log(tmp / "conductor.log", "kiln-conductor func-conductor serving RPC", conductor)
        api = procs.start("agent.cmd.api", conf, tmp / "api.log")
        procs.wait_for(lambda: procs.http_answers(url + "/"), 30, f"{url}/ to answer", (api,))
        yield url
    finally:
        for proc in (api, conductor):
            if proc is not None:
                procs.stop(proc, 15)
