"""kiln-api's /metrics: the fleet from the database, request times by route, and who may scrape."""

from __future__ import annotations

import base64

import bcrypt
import webtest
from oslo_config import cfg
from prometheus_client import make_wsgi_app
from prometheus_client.parser import text_string_to_metric_families

from agent.api import app as api_app
from agent.api import metrics
from tests.unit.api.conftest import error_of

CONF = cfg.CONF
LATENCY = "kiln_api_request_duration_seconds"


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _count(samples: dict, **labels: str) -> float:
    return samples.get((LATENCY + "_count", frozenset(labels.items())), 0.0)


def test_metrics_show_nodes_made_through_the_api(api) -> None:
    for name in ("gpu-01", "gpu-02"):
        api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": name})
    api.patch_json("/v1/nodes/gpu-02", [{"op": "replace", "path": "/maintenance", "value": True}])

    resp = api.get("/metrics")

    assert resp.content_type.startswith("text/plain")
    samples = _samples(resp.text)
    base = {"provision_state": "enroll", "power_state": "none", "quarantined": "false"}
    assert samples[("kiln_nodes", frozenset({**base, "maintenance": "false"}.items()))] == 1
    assert samples[("kiln_nodes", frozenset({**base, "maintenance": "true"}.items()))] == 1


def test_request_times_are_labelled_by_route_template_not_path(api) -> None:
    uuids = [api.post_json("/v1/nodes", {"driver": "fake-hardware"}).json["uuid"] for _ in range(5)]
    before = _samples(api.get("/metrics").text)
    for uuid in uuids:
        api.get(f"/v1/nodes/{uuid}")
    api.get("/v1/nodes/no-such-node", status=404)
    api.get("/v1/no/such/path", status=404)
    after = _samples(api.get("/metrics").text)

    route = {"method": "GET", "route": "/v1/nodes/{node_ident}"}
    assert _count(after, code="200", **route) - _count(before, code="200", **route) == 5
    assert _count(after, code="404", **route) - _count(before, code="404", **route) == 1
    unmatched = {"method": "GET", "route": metrics.NO_ROUTE, "code": "404"}
    assert _count(after, **unmatched) - _count(before, **unmatched) == 1
    values = {v for name, labels in after if name.startswith(LATENCY) for _k, v in labels}
    assert not [v for v in values if any(u in v for u in uuids)]


def test_metrics_need_the_api_credentials_unless_turned_off(conductor, tmp_path) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    users = tmp_path / "htpasswd"
    users.write_text(f"admin:{hashed}\n")
    good = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}
    CONF.set_override("http_basic_auth_user_file", str(users))
    try:
        app = webtest.TestApp(api_app.build_app(conductor, auth_strategy="http_basic"))
        assert "Authorization required" in error_of(app.get("/metrics", status=401))
        assert "kiln_nodes" in app.get("/metrics", headers=good).text
        CONF.set_override("metrics_auth", False, group="api")
        open_app = webtest.TestApp(api_app.build_app(conductor, auth_strategy="http_basic"))
        assert "kiln_fleet_scrape_success 1.0" in open_app.get("/metrics").text
        open_app.get("/v1/nodes", status=401)  # the API itself still needs credentials
        CONF.set_override("metrics_enabled", False, group="api")
        off = webtest.TestApp(api_app.build_app(conductor, auth_strategy="http_basic"))
        off.get("/metrics", headers=good, status=404)
    finally:
        CONF.clear_override("http_basic_auth_user_file")
        CONF.clear_override("metrics_auth", group="api")
        CONF.clear_override("metrics_enabled", group="api")


def test_metrics_are_for_administrators(conductor) -> None:
    class Member:
        """Sets the identity keystonemiddleware would for a project member."""

        def __init__(self, app):
            self.app = app

        def __call__(self, environ, start_response):
            environ.update(HTTP_X_IDENTITY_STATUS="Confirmed", HTTP_X_PROJECT_ID="p1", HTTP_X_ROLES="member")
            return self.app(environ, start_response)

    error_app = api_app.ApiApp(conductor).error_app
    member = webtest.TestApp(Member(metrics.AdminOnly(make_wsgi_app(metrics.REGISTRY), error_app)))
    assert "administrators only" in error_of(member.get("/metrics", status=403))
