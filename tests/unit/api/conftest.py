"""The API on a real SQLite database and a real conductor endpoint over oslo.messaging's in-memory bus."""

from __future__ import annotations

import time

import pytest
import webtest
from oslo_config import cfg

from agent.api import app as api_app
from agent.common import config, rpc
from agent.conductor import hash_ring
from agent.conductor import rpcapi as conductor_rpcapi
from agent.conductor.manager import ConductorManager
from agent.db import api as db_api
from tests.unit.schema import migrated_db

CONF = cfg.CONF
HOST = "test-conductor"


@pytest.fixture
def conductor(tmp_path):
    """A registered conductor serving RPC on kombu+memory; yields the ConductorAPI client."""
    config.register_opts(CONF)
    CONF([], project="kiln")
    CONF.set_override("host", HOST, group="conductor")
    CONF.set_override("node_locked_retry_attempts", 2, group="conductor")
    CONF.set_override("node_locked_retry_interval", 0.05, group="conductor")
    migrated_db(tmp_path)
    db_api.register_conductor(HOST, ["fake-hardware"])
    transport = rpc.get_transport(CONF, url="kombu+memory:////")
    server = rpc.get_server(transport, rpc.CONDUCTOR_TOPIC, HOST, [ConductorManager(HOST)])
    server.start()
    ring = hash_ring.HashRingManager(reset_interval=0)
    client = conductor_rpcapi.ConductorAPI(transport=transport, timeout=10, ring=ring)
    yield client
    rpc.stop_server(server, 10)
    transport.cleanup()
    db_api.dispose()
    CONF.clear_override("host", group="conductor")
    CONF.clear_override("node_locked_retry_attempts", group="conductor")
    CONF.clear_override("node_locked_retry_interval", group="conductor")


@pytest.fixture
def api(conductor):
    """webtest client of the app with noauth; requests use the newest microversion unless told."""
    app = webtest.TestApp(api_app.build_app(conductor, auth_strategy="noauth"))
    app.extra_environ = {"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "latest"}
    return app


def wait_for_state(api, ident: str, state: str, timeout: float = 15.0) -> dict:
    """Poll the node until its provision_state is ``state`` and no target is left; return it."""
    deadline = time.monotonic() + timeout
    node = {}
    while time.monotonic() < deadline:
        node = api.get(f"/v1/nodes/{ident}").json
        if (
            node["provision_state"] == state
            and node["target_provision_state"] is None
            and not node["reservation"]
        ):
            return node
        time.sleep(0.05)
    raise AssertionError(
        f"node {ident} did not reach {state}: {node.get('provision_state')} {node.get('last_error')}"
    )


def error_of(resp) -> str:
    """The faultstring of an Ironic-shaped error response."""
    import json

    return json.loads(resp.json["error_message"])["faultstring"]
