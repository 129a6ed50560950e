"""http_basic against a bcrypt htpasswd file, and owner/lessee scoping when a project is known."""

from __future__ import annotations

import base64

import bcrypt
import webtest
from oslo_config import cfg

from agent.api import app as api_app
from tests.unit.api.conftest import error_of

CONF = cfg.CONF


def _basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_http_basic(conductor, tmp_path):
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$", 1)
    users = tmp_path / "htpasswd"
    users.write_text(f"admin:{hashed}\n")
    CONF.set_override("http_basic_auth_user_file", str(users))
    try:
        app = webtest.TestApp(api_app.build_app(conductor, auth_strategy="http_basic"))
        assert app.get("/").status_int == 200
        resp = app.get("/v1/nodes", status=401)
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="Baremetal API"'
        assert "Authorization required" in error_of(resp)
        assert resp.headers["X-OpenStack-Ironic-API-Maximum-Version"] == "1.115"
        assert "Invalid credentials" in error_of(
            app.get("/v1/nodes", headers=_basic("admin", "no"), status=401)
        )
        assert app.get("/v1/nodes", headers=_basic("admin", "s3cret")).json == {"nodes": []}
    finally:
        CONF.clear_override("http_basic_auth_user_file")


class _Identity:
    """Sets the identity keys keystonemiddleware.auth_token would, for a project user (a member)."""

    def __init__(self, app, project, roles="member"):
        self.app, self.project, self.roles = app, project, roles

    def __call__(self, environ, start_response):
        environ.update(
            HTTP_X_IDENTITY_STATUS="Confirmed", HTTP_X_PROJECT_ID=self.project, HTTP_X_ROLES=self.roles
        )
        return self.app(environ, start_response)


def test_owner_and_lessee_scoping(api, conductor):
    env = {"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "latest"}
    api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "mine", "owner": "p1"})
    api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "leased", "lessee": "p1"})
    api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "other", "owner": "p2"})
    member = webtest.TestApp(_Identity(api_app.ApiApp(conductor), "p1"), extra_environ=env)
    names = sorted(n["name"] for n in member.get("/v1/nodes").json["nodes"])
    assert names == ["leased", "mine"]
    assert "Node other could not be found" in error_of(member.get("/v1/nodes/other", status=404))
    # As Ironic: a lessee member may change extra, not driver_info.
    member.patch_json("/v1/nodes/leased", [{"op": "add", "path": "/extra/x", "value": 1}])
    resp = member.patch_json(
        "/v1/nodes/leased", [{"op": "replace", "path": "/driver_info", "value": {"x": 1}}], status=403
    )
    assert "may not change the node's driver_info" in error_of(resp)
    assert member.patch_json("/v1/nodes/mine", [{"op": "add", "path": "/extra/x", "value": 1}]).json[
        "extra"
    ] == {"x": 1}
    member.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "new"}, status=403)
    admin = webtest.TestApp(_Identity(api_app.ApiApp(conductor), "p1", "admin"), extra_environ=env)
    created = admin.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "new"}).json
    assert created["owner"] == "p1"
