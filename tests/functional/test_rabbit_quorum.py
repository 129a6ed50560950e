"""kiln-conductor on RabbitMQ quorum queues (`[oslo_messaging_rabbit]rabbit_quorum_queue`).

Queue types cannot change once a queue exists, so the test has a vhost of its own. The conductor
declares its RPC queues as quorum queues, and a call from this process makes the round trip.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest
from oslo_config import cfg

from agent.common import config, row_dicts, rpc
from agent.conductor import hash_ring
from agent.conductor import rpcapi as conductor_rpcapi
from agent.db import api as db_api
from tests.functional import procs

CONF = cfg.CONF
HOST = "ft-quorum"

pytestmark = [
    pytest.mark.skipif(not procs.reachable(5672), reason="RabbitMQ is not listening on 127.0.0.1:5672"),
    pytest.mark.skipif(not procs.reachable(5432), reason="PostgreSQL is not listening on 127.0.0.1:5432"),
    pytest.mark.skipif(procs.RABBITMQCTL is None, reason="rabbitmqctl is not installed"),
]


@pytest.fixture
def quorum_vhost():
    """A RabbitMQ vhost of this test's own; removed afterwards with its queues."""
    vhost = f"kiln-quorum-{uuid.uuid4().hex[:10]}"
    procs.add_vhost(vhost)
    try:
        yield vhost
    finally:
        procs.delete_vhost(vhost)


def _queue_types(vhost: str) -> dict[str, str]:
    out = subprocess.run(
        [procs.RABBITMQCTL, "-q", "list_queues", "-p", vhost, "name", "type", "--no-table-headers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return dict(line.split("\t")[:2] for line in out.splitlines() if "\t" in line)


def test_conductor_serves_rpc_on_quorum_queues(tmp_path, quorum_vhost) -> None:
    config.register_opts(CONF)
    CONF([], project="kiln")
    url = f"rabbit://guest:guest@127.0.0.1:5672/{quorum_vhost}"
    with procs.throwaway_postgres() as db_url:
        db_api.configure(db_url)
        conf = procs.write_conf(
            tmp_path / "conductor.conf",
            {
                "DEFAULT": {"transport_url": url, "state_path": tmp_path},
                "database": {"connection": db_url},
                "conductor": {"host": HOST, "heartbeat_interval": 1},
                "oslo_messaging_rabbit": {"rabbit_quorum_queue": "true"},
            },
        )
        procs.dbsync(conf)
        conductor = procs.start("agent.cmd.conductor", conf, tmp_path / "conductor.log")
        rpc.get_transport(CONF, url=url).cleanup()  # registers [oslo_messaging_rabbit]
        CONF.set_override("rabbit_quorum_queue", True, group="oslo_messaging_rabbit")
        transport = None
        try:
            procs.wait_for_log(tmp_path / "conductor.log", "serving RPC", conductor)
            types = _queue_types(quorum_vhost)
            assert types.get(rpc.CONDUCTOR_TOPIC) == "quorum", types
            assert types.get(f"{rpc.CONDUCTOR_TOPIC}.{HOST}") == "quorum", types

            node = db_api.create_node({"driver": "fake-hardware"})
            transport = rpc.get_transport(CONF, url=url)
            ring = hash_ring.HashRingManager(reset_interval=0)
            client = conductor_rpcapi.ConductorAPI(transport=transport, timeout=30, ring=ring)
            updated = client.update_node({}, row_dicts.node_to_dict(node), {"extra": {"queues": "quorum"}})
            assert updated["extra"] == {"queues": "quorum"}
            assert db_api.get_node(node.uuid).extra == {"queues": "quorum"}
        finally:
            if transport is not None:
                transport.cleanup()
            CONF.clear_override("rabbit_quorum_queue", group="oslo_messaging_rabbit")
            assert procs.stop(conductor) == 0, procs.read(tmp_path / "conductor.log")[-3000:]
            db_api.dispose()
