"""Version discovery and microversion negotiation, headers on every response (errors too)."""

from __future__ import annotations

import pytest

from agent.api import versions
from tests.unit.api.conftest import error_of


def _headers_ok(resp, served: str) -> None:
    assert resp.headers["X-OpenStack-Ironic-API-Minimum-Version"] == "1.1"
    assert resp.headers["X-OpenStack-Ironic-API-Maximum-Version"] == versions.max_string()
    assert resp.headers["X-OpenStack-Ironic-API-Version"] == served
    assert resp.headers["OpenStack-API-Version"] == f"baremetal {served}"
    assert resp.headers["X-OpenStack-Request-Id"].startswith("req-")


def test_root_lists_v1(api):
    resp = api.get("/", extra_environ={"HTTP_X_OPENSTACK_IRONIC_API_VERSION": ""})
    body = resp.json
    assert body["default_version"]["id"] == "v1"
    assert body["default_version"]["min_version"] == "1.1"
    assert body["default_version"]["version"] == "1.115"
    assert body["default_version"]["links"][0]["href"] == "http://localhost/v1/"
    assert body["versions"] == [body["default_version"]]
    _headers_ok(resp, "1.1")


def test_v1_document(api):
    body = api.get("/v1/").json
    assert body["id"] == "v1"
    assert body["media_types"] == [
        {"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}
    ]
    assert body["nodes"][0]["href"] == "http://localhost/v1/nodes/"
    assert body["allocations"][1]["rel"] == "bookmark"
    assert body["version"]["version"] == "1.115"


def test_latest_and_explicit_versions(api):
    _headers_ok(api.get("/v1/nodes"), "1.115")
    resp = api.get("/v1/nodes", extra_environ={"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "1.37"})
    _headers_ok(resp, "1.37")
    resp = api.get("/v1/nodes", headers={"OpenStack-API-Version": "baremetal 1.52"})
    _headers_ok(resp, "1.52")


@pytest.mark.parametrize("requested", ["1.116", "1.0", "2.1"])
def test_out_of_range_is_406_with_headers(api, requested):
    resp = api.get("/v1/nodes", extra_environ={"HTTP_X_OPENSTACK_IRONIC_API_VERSION": requested}, status=406)
    assert "[1.1, 1.115]" in error_of(resp)
    assert resp.headers["X-OpenStack-Ironic-API-Maximum-Version"] == "1.115"


def test_malformed_version_is_400(api):
    resp = api.get("/v1/nodes", extra_environ={"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "one"}, status=400)
    assert "Invalid value for X-OpenStack-Ironic-API-Version header" in error_of(resp)


def test_error_shape_and_headers_on_404(api):
    resp = api.get("/v1/nodes/nope", status=404)
    body = resp.json
    assert set(body) == {"error_message"}
    assert error_of(resp) == "Node nope could not be found."
    import json

    inner = json.loads(body["error_message"])
    assert inner["faultcode"] == "Client"
    assert inner["debuginfo"] is None
    _headers_ok(resp, "1.115")


def test_unknown_path_and_method(api):
    assert "no such path /v1/bios" in error_of(api.get("/v1/bios", status=404))
    resp = api.post_json("/v1/nodes/detail", {}, status=405)
    assert resp.headers["Allow"] == "GET"


def test_endpoint_newer_than_version_is_404(api):
    api.get("/v1/allocations", extra_environ={"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "1.51"}, status=404)
    api.get("/v1/conductors", extra_environ={"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "1.48"}, status=404)
