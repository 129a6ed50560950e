"""oslo.policy on the API: each persona of Ironic's defaults, by rule family, and a policy file."""

from __future__ import annotations

import pytest
import webtest
from oslo_config import cfg

from agent.api import app as api_app
from agent.api import policy
from tests.unit.api.conftest import error_of

CONF = cfg.CONF
ENV = {"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "latest"}
SECRET = "bmc-s3cret"


class _As:
    """Sets the identity keys keystonemiddleware would for a token of ``roles`` in a scope."""

    def __init__(self, app, roles, project=None, project_name=None):
        self.app, self.roles, self.project, self.project_name = app, roles, project, project_name

    def __call__(self, environ, start_response):
        environ.update(HTTP_X_IDENTITY_STATUS="Confirmed", HTTP_X_ROLES=self.roles, HTTP_X_USER_ID="u")
        if self.project:
            environ.update(
                HTTP_X_PROJECT_ID=self.project, HTTP_X_PROJECT_NAME=self.project_name or self.project
            )
        else:
            environ["HTTP_OPENSTACK_SYSTEM_SCOPE"] = "all"
        return self.app(environ, start_response)


@pytest.fixture
def who(conductor):
    """who(roles, project=None): a webtest client as that persona (no project: system scope)."""
    policy.reset()

    def make(roles, project=None, project_name=None):
        return webtest.TestApp(
            _As(api_app.ApiApp(conductor), roles, project, project_name), extra_environ=ENV
        )

    yield make
    policy.reset()


@pytest.fixture
def nodes(api):
    """A node owned by "own" and leased to "lease", and one owned by "other"."""
    info = {"ipmi_address": "10.0.0.9", "ipmi_username": "root", "ipmi_password": SECRET}
    leased = api.post_json(
        "/v1/nodes",
        {"driver": "fake-hardware", "name": "leased", "owner": "own", "lessee": "lease", "driver_info": info},
    ).json
    api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "other", "owner": "other"})
    return leased


def test_node_reads_by_persona(who, nodes):
    system_reader = who("reader")
    assert sorted(n["name"] for n in system_reader.get("/v1/nodes").json["nodes"]) == ["leased", "other"]
    assert system_reader.get("/v1/nodes/leased").json["driver_info"]["ipmi_password"] == "******"
    owner_reader = who("reader", "own")
    assert [n["name"] for n in owner_reader.get("/v1/nodes").json["nodes"]] == ["leased"]
    shown = owner_reader.get("/v1/nodes/leased").json
    assert shown["driver_info"] == {
        "ipmi_address": "10.0.0.9",
        "ipmi_username": "root",
        "ipmi_password": "******",
    }
    lessee = who("admin", "lease")
    redacted = lessee.get("/v1/nodes/leased").json
    assert (
        redacted["driver_info"]
        == "** Value Redacted - Requires baremetal:node:get:driver_info permission. **"
    )
    assert "Redacted" in redacted["driver_internal_info"]
    assert "other could not be found" in error_of(lessee.get("/v1/nodes/other", status=404))
    no_role = who("creator", "own")
    assert "baremetal:node:list" in error_of(no_role.get("/v1/nodes", status=403))


def test_node_patch_rules(who, nodes):
    owner_member = who("member", "own")
    resp = owner_member.patch_json(
        "/v1/nodes/leased",
        [{"op": "replace", "path": "/driver_info/ipmi_password", "value": "x"}],
        status=403,
    )
    assert "may not change the node's driver_info (policy baremetal:node:update:driver_info)" in error_of(
        resp
    )
    # Sending the masked document back unchanged is not a change; extra and name are the owner's to set.
    owner_member.patch_json("/v1/nodes/leased", [{"op": "add", "path": "/extra/k", "value": "v"}])
    owner_member.patch_json("/v1/nodes/leased", [{"op": "replace", "path": "/name", "value": "renamed"}])
    resp = owner_member.patch_json(
        "/v1/nodes/renamed", [{"op": "replace", "path": "/owner", "value": "other"}], status=403
    )
    assert "baremetal:node:update:owner" in error_of(resp)
    reader = who("reader")
    resp = reader.patch_json("/v1/nodes/renamed", [{"op": "add", "path": "/extra/k", "value": 1}], status=403)
    assert "baremetal:node:update_extra" in error_of(resp)
    admin = who("admin")
    admin.patch_json("/v1/nodes/renamed", [{"op": "add", "path": "/driver_info/ipmi_port", "value": 623}])
    lessee_member = who("member", "lease")
    lessee_member.patch_json("/v1/nodes/renamed", [{"op": "add", "path": "/extra/l", "value": 1}])
    resp = lessee_member.patch_json(
        "/v1/nodes/renamed", [{"op": "replace", "path": "/properties", "value": {"cpus": 4}}], status=403
    )
    assert "baremetal:node:update:properties" in error_of(resp)


def test_lessee_verbs(who, nodes):
    lessee_admin, lessee_member = who("admin", "lease"), who("member", "lease")
    assert "set_maintenance" in error_of(
        lessee_member.put_json("/v1/nodes/leased/maintenance", {"reason": "x"}, status=403)
    )
    lessee_admin.put_json("/v1/nodes/leased/maintenance", {"reason": "x"}, status=202)
    lessee_admin.delete("/v1/nodes/leased/maintenance", status=202)
    resp = lessee_member.put_json("/v1/nodes/leased/states/provision", {"target": "manage"}, status=403)
    assert "baremetal:node:set_provision_state" in error_of(resp)
    lessee_admin.put_json("/v1/nodes/leased/states/provision", {"target": "manage"}, status=202)
    assert "baremetal:node:traits:set" in error_of(
        lessee_admin.put("/v1/nodes/leased/traits/CUSTOM_X", status=403)
    )
    resp = lessee_admin.put_json(
        "/v1/nodes/leased/management/boot_device", {"boot_device": "pxe"}, status=403
    )
    assert "baremetal:node:set_boot_device" in error_of(resp)
    assert "baremetal:node:delete" in error_of(lessee_admin.delete("/v1/nodes/leased", status=403))
    assert "baremetal:node:history:get" in error_of(lessee_admin.get("/v1/nodes/leased/history", status=403))
    lessee_member.get("/v1/nodes/leased/states")
    lessee_member.get("/v1/nodes/leased/traits")


def test_create_and_delete(who, nodes, api):
    body = {"driver": "fake-hardware", "name": "mine"}
    assert "baremetal:node:create" in error_of(who("member", "own").post_json("/v1/nodes", body, status=403))
    owner_admin = who("admin", "own")
    assert owner_admin.post_json("/v1/nodes", body).json["owner"] == "own"
    assert "baremetal:node:delete" in error_of(who("member", "own").delete("/v1/nodes/mine", status=403))
    owner_admin.delete("/v1/nodes/mine", status=204)
    assert "baremetal:node:create" in error_of(who("reader").post_json("/v1/nodes", body, status=403))
    who("admin").post_json("/v1/nodes", {**body, "owner": "other"}, status=201)


def test_ports_shards_and_system_records(who, nodes):
    port = {"address": "52:54:00:aa:00:01", "node_uuid": nodes["uuid"]}
    resp = who("member", "own").post_json("/v1/ports", port, status=403)
    assert "baremetal:port:create" in error_of(resp)
    created = who("admin", "own").post_json("/v1/ports", port).json
    assert [p["uuid"] for p in who("reader", "lease").get("/v1/ports").json["ports"]] == [created["uuid"]]
    resp = who("admin", "lease").delete(f"/v1/ports/{created['uuid']}", status=403)
    assert "baremetal:port:delete" in error_of(resp)
    assert "baremetal:shards:get" in error_of(who("admin", "own").get("/v1/shards", status=403))
    who("reader").get("/v1/shards")
    resp = who("reader").post_json("/v1/chassis", {"description": "rack 1"}, status=403)
    assert "kiln:system_record:write" in error_of(resp)
    who("member").post_json("/v1/chassis", {"description": "rack 1"}, status=201)


def test_service_role(who, nodes):
    service = who("service", "svc-project-id", "service")
    assert sorted(n["name"] for n in service.get("/v1/nodes").json["nodes"]) == ["leased", "other"]
    service.patch_json("/v1/nodes/other", [{"op": "add", "path": "/extra/svc", "value": 1}])
    elsewhere = who("service", "p9", "not-service")
    assert elsewhere.get("/v1/nodes").json["nodes"] == []


def test_policy_file_overrides_defaults(who, nodes, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        '"show_password": "role:admin and system_scope:all"\n'
        '"baremetal:node:delete": "!"\n'
        '"baremetal:node:update:driver_info": "role:admin and system_scope:all"\n'
    )
    CONF.set_override("policy_file", str(path), group="oslo_policy")
    try:
        policy.reset()
        admin = who("admin")
        assert admin.get("/v1/nodes/leased").json["driver_info"]["ipmi_password"] == SECRET
        assert who("reader").get("/v1/nodes/leased").json["driver_info"]["ipmi_password"] == "******"
        assert "baremetal:node:delete" in error_of(admin.delete("/v1/nodes/other", status=403))
        resp = who("member").patch_json(
            "/v1/nodes/leased", [{"op": "add", "path": "/driver_info/x", "value": 1}], status=403
        )
        assert "baremetal:node:update:driver_info" in error_of(resp)
    finally:
        CONF.clear_override("policy_file", group="oslo_policy")
        policy.reset()
    who("admin").delete("/v1/nodes/other", status=204)


def test_rules_are_documented_and_unique():
    rules = policy.list_rules()
    names = [r.name for r in rules]
    assert len(names) == len(set(names))
    assert {"baremetal:node:get", "baremetal:node:update:driver_info", "show_password"} <= set(names)
    enforcer = policy.get_enforcer()
    assert set(names) <= set(enforcer.registered_rules)
