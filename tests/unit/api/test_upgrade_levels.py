"""kiln-api under [upgrade_levels]conductor: calls newer than the cap are refused clearly, older ones go."""

from __future__ import annotations

import oslo_messaging as messaging
import pytest
import webtest
from oslo_config import cfg

from agent.api import app as api_app
from agent.common import exception, rpc
from agent.conductor import hash_ring
from agent.conductor import rpcapi as conductor_rpcapi
from agent.conductor.manager import ConductorManager
from tests.unit.api.conftest import HOST, error_of

CONF = cfg.CONF


class PreviousReleaseManager(ConductorManager):
    """The conductor's endpoints as a 2026.12.04 conductor serves them: target version 1.0."""

    target = messaging.Target(version="1.0")


def _api(client) -> webtest.TestApp:
    app = webtest.TestApp(api_app.build_app(client, auth_strategy="noauth"))
    app.extra_environ = {"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "latest"}
    return app


@pytest.fixture
def capped(conductor):
    """An API whose ConductorAPI takes its cap from [upgrade_levels]conductor = 2026.12.04."""
    CONF.set_override("conductor", "2026.12.04", group="upgrade_levels")
    try:
        client = conductor_rpcapi.ConductorAPI(
            transport=conductor.client.transport, timeout=10, ring=hash_ring.HashRingManager(reset_interval=0)
        )
    finally:
        CONF.clear_override("conductor", group="upgrade_levels")
    assert client.version_cap == "1.0"
    return _api(client)


def test_capped_api_refuses_newer_calls_and_serves_older_ones(capped):
    node = capped.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "n1"}).json
    resp = capped.get(f"/v1/nodes/{node['uuid']}/vifs", expect_errors=True)
    assert resp.status_int == 409
    assert error_of(resp) == (
        "vif_list needs kiln.conductor RPC API 1.1, but [upgrade_levels]conductor caps it at 1.0 while "
        "services of an older release run; retry once every conductor runs the new release and the cap "
        "is lifted."
    )
    resp = capped.post_json(
        "/v1/portgroups", {"node_uuid": node["uuid"], "address": "52:54:00:00:00:01"}, expect_errors=True
    )
    assert resp.status_int == 409 and "create_portgroup needs kiln.conductor RPC API 1.1" in error_of(resp)
    patched = capped.patch_json(
        f"/v1/nodes/{node['uuid']}", [{"op": "add", "path": "/extra/k", "value": "v"}]
    )
    assert patched.json["extra"] == {"k": "v"}


def test_without_the_cap_an_old_conductor_fails_what_the_cap_refuses(conductor, tmp_path):
    """What the cap is for: a 1.0 conductor cannot dispatch 1.1 (the API answers 500)."""
    transport = conductor.client.transport
    old_host = "old-conductor"
    server = rpc.get_server(transport, rpc.CONDUCTOR_TOPIC, HOST + "-old", [PreviousReleaseManager(old_host)])
    server.start()
    try:
        client = conductor_rpcapi.ConductorAPI(
            transport=transport, timeout=10, ring=hash_ring.HashRingManager(reset_interval=0)
        )
        old = client.client.prepare(server=HOST + "-old", version="1.1")
        with pytest.raises(messaging.RemoteError, match="UnsupportedVersion"):
            old.call({}, "vif_list", node_ident="x")
        capped = conductor_rpcapi.ConductorAPI(transport=transport, timeout=10, version_cap="1.0")
        with pytest.raises(exception.RPCVersionCapped, match=r"\[upgrade_levels\]conductor caps it at 1.0"):
            capped.vif_list(
                {},
                {"uuid": "x"},
            )
    finally:
        rpc.stop_server(server, 10)
