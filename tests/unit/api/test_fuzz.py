"""Fuzzing the REST API with hypothesis: it never answers 500, and a rejected request changes no node.

Requests go through the in-process app with a real conductor endpoint (see conftest.py), so a
500 anywhere, API or conductor, shows up. Example counts are modest: the whole file runs in
seconds, and hypothesis keeps the failing examples it finds in its database for the next run.
"""

from __future__ import annotations

import json
import os
import urllib.parse

import pytest
import webtest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.api import app as api_app
from agent.common.config import CONF

#: Examples per test; KILN_FUZZ_EXAMPLES=2000 KILN_FUZZ_RANDOM=1 explores further (and finds new ones).
EXAMPLES = int(os.environ.get("KILN_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=not os.environ.get("KILN_FUZZ_RANDOM"),  # CI: the same examples every run
)

NODE_FIELDS = [
    "uuid", "driver", "driver_info", "extra", "instance_info", "instance_uuid", "chassis_uuid", "properties",
    "maintenance", "maintenance_reason", "name", "network_interface", "resource_class", "boot_interface",
    "deploy_interface", "power_interface", "management_interface", "conductor_group", "automated_clean",
    "protected", "protected_reason", "owner", "description", "retired", "retired_reason", "lessee", "shard",
    "traits", "provision_state", "id", "reservation", "parent_node", "network_data", "firmware_interface",
]  # fmt: skip
PORT_FIELDS = [
    "uuid", "address", "node_uuid", "extra", "local_link_connection", "pxe_enabled", "portgroup_uuid",
    "physical_network", "is_smartnic", "name", "id", "internal_info", "node_id",
]  # fmt: skip
NASTY_TEXT = st.sampled_from(
    [
        "../x",
        "../../etc/passwd",
        "a/b",
        "x\x00y",
        "\x00",
        "n" * 300,
        "é" * 100,
        "\U0001f525",
        "%2e%2e%2f",
        "",
        " ",
        "null",
        "fake-hardware",
        "52:54:00:12:34:56",
        "1be26c0b-03f2-4d2d-ae87-c02d7f33c781",
        "\ud800",  # a lone surrogate: not encodable as UTF-8
    ]
)
TEXT = st.one_of(NASTY_TEXT, st.text(max_size=40))
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    TEXT,
)
JSONISH = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


def _body(fields: list[str], base: dict | None = None) -> st.SearchStrategy[dict]:
    """Objects of the resource's field names (and others), any JSON values; often on a valid base."""
    fuzzed = st.dictionaries(st.one_of(st.sampled_from(fields), TEXT), JSONISH, max_size=8)
    if base is None:
        return fuzzed
    known = st.dictionaries(st.sampled_from(fields), JSONISH, max_size=3)
    return st.one_of(fuzzed, st.builds(lambda extra: {**base, **extra}, known))


PATCH_PATH = st.one_of(
    st.sampled_from([f"/{f}" for f in NODE_FIELDS]),
    st.builds(
        lambda f, k: f"/{f}/{k}",
        st.sampled_from(["extra", "driver_info", "properties", "instance_info"]),
        TEXT,
    ),
    st.sampled_from(
        ["", "/", "//", "/extra/~2", "/extra/-", "extra", "/extra/a/b/c", "/properties/capabilities"]
    ),
    TEXT,
)
PATCH_OP = st.fixed_dictionaries(
    {
        "op": st.one_of(st.sampled_from(["add", "replace", "remove", "move", "copy", "test"]), TEXT),
        "path": PATCH_PATH,
    },
    optional={"value": JSONISH, "from": PATCH_PATH},
)
PATCH_DOC = st.one_of(
    st.lists(PATCH_OP, min_size=1, max_size=3), st.lists(st.one_of(PATCH_OP, JSONISH), max_size=4), JSONISH
)


def _encode(body: object) -> bytes:
    """JSON bytes of ``body``; a lone surrogate makes invalid UTF-8, which a client may well send."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


@pytest.fixture
def client(conductor):
    """The app without webtest's lint, which refuses some of what a real client may send."""
    app = webtest.TestApp(api_app.build_app(conductor, auth_strategy="noauth"), lint=False)
    app.extra_environ = {"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "latest"}
    return app


@pytest.fixture
def node(client) -> dict:
    """One node with a port, for PATCH and port fuzzing."""
    created = client.post_json(
        "/v1/nodes", {"driver": "fake-hardware", "name": "fuzz-target", "extra": {"keep": [1, {"a": "b"}]}}
    ).json
    client.post_json("/v1/ports", {"address": "52:54:00:00:00:01", "node_uuid": created["uuid"]})
    return created


def _no_500(resp) -> None:
    assert resp.status_int < 500, (
        f"{resp.status} for {resp.request.method} {resp.request.url}: {resp.text[:500]}"
    )


def _state(client, uuid: str) -> tuple:
    """What a request may change of the node: the node and its ports."""
    node = client.get(f"/v1/nodes/{uuid}").json
    ports = client.get(f"/v1/ports/detail?node={uuid}").json["ports"]
    node.pop("updated_at", None)
    return node, sorted(json.dumps(p, sort_keys=True) for p in ports)


def _send(client, method: str, url: str, body: bytes):
    return client.request(
        url, method=method, body=body, headers={"Content-Type": "application/json"}, expect_errors=True
    )


@FUZZ
@given(body=_body(NODE_FIELDS, {"driver": "fake-hardware"}))
def test_node_create_bodies(client, node, body) -> None:
    before = client.get("/v1/nodes").json["nodes"]
    resp = _send(client, "POST", "/v1/nodes", _encode(body))
    _no_500(resp)
    if resp.status_int >= 400:
        assert client.get("/v1/nodes").json["nodes"] == before
        assert "faultstring" in resp.json["error_message"]


@FUZZ
@given(body=_body(PORT_FIELDS, {"address": "52:54:00:00:00:02"}), own_node=st.booleans())
def test_port_create_bodies(client, node, body, own_node) -> None:
    if own_node:
        body.setdefault("node_uuid", node["uuid"])
    before = _state(client, node["uuid"])
    resp = _send(client, "POST", "/v1/ports", _encode(body))
    _no_500(resp)
    if resp.status_int >= 400:
        assert _state(client, node["uuid"]) == before


@FUZZ
@given(patch=PATCH_DOC)
def test_node_patch_documents(client, node, patch) -> None:
    before = _state(client, node["uuid"])
    resp = _send(client, "PATCH", f"/v1/nodes/{node['uuid']}", _encode(patch))
    _no_500(resp)
    if resp.status_int >= 400:
        assert _state(client, node["uuid"]) == before, resp.text


@FUZZ
@given(patch=PATCH_DOC)
def test_port_patch_documents(client, node, patch) -> None:
    port = client.get(f"/v1/ports?node={node['uuid']}").json["ports"][0]["uuid"]
    before = _state(client, node["uuid"])
    resp = _send(client, "PATCH", f"/v1/ports/{port}", _encode(patch))
    _no_500(resp)
    if resp.status_int >= 400:
        assert _state(client, node["uuid"]) == before, resp.text


QUERY_KEYS = st.one_of(
    st.sampled_from(
        [
            "limit", "marker", "sort_key", "sort_dir", "fields", "detail", "node", "node_uuid", "address",
            "associated", "maintenance", "provision_state", "driver", "resource_class", "fault",
            "conductor_group", "owner", "retired", "lessee", "shard", "instance_uuid", "description_contains",
            "portgroup", "conductor", "include_children", "parent_node", "sharded", "missing",
        ]
    ),
    TEXT,
)  # fmt: skip


@FUZZ
@given(
    resource=st.sampled_from(["nodes", "nodes/detail", "ports", "ports/detail", "portgroups", "allocations"]),
    query=st.lists(st.tuples(QUERY_KEYS, TEXT), max_size=4),
)
def test_query_strings(client, node, resource, query) -> None:
    pairs = [(k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass")) for k, v in query]
    resp = client.get(f"/v1/{resource}?{urllib.parse.urlencode(pairs)}", expect_errors=True)
    _no_500(resp)


@FUZZ
@given(
    ident=TEXT,
    sub=st.sampled_from(["", "/states", "/traits", "/ports", "/vifs", "/validate", "/maintenance", "/bios"]),
)
def test_path_like_and_unicode_idents(client, node, ident, sub) -> None:
    before = _state(client, node["uuid"])
    quoted = urllib.parse.quote(ident.encode("utf-8", "surrogatepass"), safe="")
    for method in ("GET", "DELETE", "PATCH", "PUT"):
        resp = _send(client, method, f"/v1/nodes/{quoted}{sub}", b'[{"op": "remove", "path": "/extra/keep"}]')
        _no_500(resp)
    assert _state(client, node["uuid"]) == before


@FUZZ
@given(name=TEXT)
def test_node_names(client, name) -> None:
    resp = _send(client, "POST", "/v1/nodes", _encode({"driver": "fake-hardware", "name": name}))
    _no_500(resp)
    if resp.status_int == 201:
        got = client.get(f"/v1/nodes/{urllib.parse.quote(name, safe='')}", expect_errors=True)
        assert got.status_int == 200 and got.json["name"] == name


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_413_and_changes_nothing(client, node, chunked) -> None:
    limit = CONF.api.max_request_body_size
    huge = _encode([{"op": "add", "path": "/extra/big", "value": "x" * limit}])
    before = _state(client, node["uuid"])
    if chunked:  # no Content-Length: the limit applies while the body is read
        req = webtest.TestRequest.blank(
            f"/v1/nodes/{node['uuid']}",
            method="PATCH",
            headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        )
        req.body_file = __import__("io").BytesIO(huge)
        req.environ.pop("CONTENT_LENGTH", None)
        req.environ["wsgi.input_terminated"] = True
        resp = client.do_request(req, expect_errors=True)
    else:
        resp = _send(client, "PATCH", f"/v1/nodes/{node['uuid']}", huge)
    assert resp.status_int == 413, resp.text
    assert "max_request_body_size" in json.loads(resp.json["error_message"])["faultstring"]
    assert _state(client, node["uuid"]) == before
    # Just under the limit is fine.
    small = _encode([{"op": "add", "path": "/extra/big", "value": "x" * (limit // 2)}])
    assert _send(client, "PATCH", f"/v1/nodes/{node['uuid']}", small).status_int == 200
