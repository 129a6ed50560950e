"""API roles end to end: a real Keystone issues the tokens, keystonemiddleware validates them in kiln-api,
and each persona drives the API through openstacksdk."""

from __future__ import annotations

import time
import uuid

import openstack
import pytest
from openstack import exceptions as sdk_exc

from tests.functional import keystone_server
from tests.functional.api_services import conductor_and_api

PASSWORD = "pw-" + uuid.uuid4().hex[:8]
SECRET = "bmc-" + uuid.uuid4().hex[:8]
# persona: (project key or None for system scope, role)
PERSONAS = {
    "system-admin": (None, "admin"),
    "system-reader": (None, "reader"),
    "owner-admin": ("own", "admin"),
    "owner-member": ("own", "member"),
    "owner-reader": ("own", "reader"),
    "lessee-admin": ("lease", "admin"),
    "lessee-member": ("lease", "member"),
    "lessee-reader": ("lease", "reader"),
    "service": ("service", "service"),
}


def _connect(auth_url: str, user: str, password: str, project: str | None) -> openstack.connection.Connection:
    scope = (
        {"project_name": project, "project_domain_name": "Default"} if project else {"system_scope": "all"}
    )
    return openstack.connect(
        auth_url=auth_url,
        username=user,
        password=password,
        user_domain_name="Default",
        region_name="RegionOne",
        baremetal_api_version="1.80",
        **scope,
    )


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """Keystone with a user per persona, kiln-api behind keystonemiddleware; yields (conns, nodes)."""
    started = time.monotonic()
    keystone_server.venv()  # built once per machine (about 2 min), cached in ~/.cache/kiln
    venv_s = time.monotonic() - started
    tmp = tmp_path_factory.mktemp("keystone")
    with keystone_server.running(tmp) as auth_url:
        admin = _connect(auth_url, "admin", keystone_server.ADMIN_PASSWORD, None)
        ident = admin.identity
        roles = {
            n: ident.find_role(n) or ident.create_role(name=n)
            for n in ("admin", "member", "reader", "service")
        }
        projects = {k: ident.create_project(name=k, domain_id="default") for k in ("own", "lease", "service")}
        kiln_user = ident.create_user(name="kiln", password=PASSWORD, domain_id="default")
        ident.assign_project_role_to_user(projects["service"], kiln_user, roles["service"])
        ident.assign_project_role_to_user(projects["service"], kiln_user, roles["admin"])
        for name, (project, role) in PERSONAS.items():
            user = ident.create_user(name=name, password=PASSWORD, domain_id="default")
            if project is None:
                ident.assign_system_role_to_user(user, roles[role], "all")
            else:
                ident.assign_project_role_to_user(projects[project], user, roles[role])
        authtoken = {
            "www_authenticate_uri": auth_url,
            "auth_url": auth_url,
            "auth_type": "password",
            "interface": "public",
            "username": "kiln",
            "password": PASSWORD,
            "user_domain_name": "Default",
            "project_name": "service",
            "project_domain_name": "Default",
        }
        extra = {"DEFAULT": {"auth_strategy": "keystone"}, "keystone_authtoken": authtoken}
        with conductor_and_api(tmp_path_factory.mktemp("kiln"), "roles-conductor", extra) as url:
            service = ident.create_service(name="kiln", type="baremetal")
            ident.create_endpoint(service_id=service.id, interface="public", url=url, region_id="RegionOne")
            conns = {
                name: _connect(auth_url, name, PASSWORD, project and projects[project].name)
                for name, (project, _role) in PERSONAS.items()
            }
            sysadmin = conns["system-admin"].baremetal
            info = {"ipmi_address": "10.9.0.1", "ipmi_username": "root", "ipmi_password": SECRET}
            nodes = {
                "leased": sysadmin.create_node(
                    name="leased",
                    driver="fake-hardware",
                    owner=projects["own"].id,
                    lessee=projects["lease"].id,
                    driver_info=info,
                ),
                "other": sysadmin.create_node(name="other", driver="fake-hardware"),
            }
            total = time.monotonic() - started
            print(f"\nkeystone + kiln-api fixture setup: {total:.1f} s (keystone venv: {venv_s:.1f} s of it)")
            yield conns, nodes


def _names(conn) -> list[str]:
    return sorted(n.name for n in conn.baremetal.nodes())


def test_who_sees_which_nodes(cloud):
    conns, _ = cloud
    assert _names(conns["system-admin"]) == ["leased", "other"]
    assert _names(conns["system-reader"]) == ["leased", "other"]
    assert _names(conns["service"]) == ["leased", "other"]
    for name in (
        "owner-admin",
        "owner-member",
        "owner-reader",
        "lessee-admin",
        "lessee-member",
        "lessee-reader",
    ):
        assert _names(conns[name]) == ["leased"], name
        with pytest.raises(sdk_exc.NotFoundException):
            conns[name].baremetal.get_node("other")


def test_driver_info_secrets(cloud):
    conns, _ = cloud
    for name in ("system-admin", "system-reader", "owner-admin", "owner-reader"):
        info = conns[name].baremetal.get_node("leased").driver_info
        assert info["ipmi_password"] == "******", name
        assert info["ipmi_address"] == "10.9.0.1", name
    # The SDK's Node turns a non-dict driver_info into {}: read the raw document.
    raw = conns["lessee-admin"].baremetal.get("/nodes/leased", microversion="1.80").json()
    assert raw["driver_info"] == "** Value Redacted - Requires baremetal:node:get:driver_info permission. **"
    assert SECRET not in str(raw)
    for name in ("owner-admin", "owner-member"):
        with pytest.raises(sdk_exc.ForbiddenException, match="driver_info"):
            conns[name].baremetal.patch_node(
                "leased", [{"op": "add", "path": "/driver_info/ipmi_port", "value": 1}]
            )
    node = conns["system-admin"].baremetal.patch_node(
        "leased", [{"op": "add", "path": "/driver_info/ipmi_port", "value": 623}]
    )
    assert node.driver_info["ipmi_port"] == 623 and node.driver_info["ipmi_password"] == "******"


def test_writes_by_role(cloud):
    conns, _ = cloud
    extra = [{"op": "add", "path": "/extra/by", "value": "x"}]
    for name in ("owner-member", "lessee-member", "system-admin"):
        conns[name].baremetal.patch_node("leased", extra)
    for name in ("owner-reader", "lessee-reader", "system-reader"):
        with pytest.raises(sdk_exc.ForbiddenException):
            conns[name].baremetal.patch_node("leased", extra)
    with pytest.raises(sdk_exc.ForbiddenException, match="baremetal:node:set_maintenance"):
        conns["lessee-member"].baremetal.set_node_maintenance("leased", reason="x")
    conns["lessee-admin"].baremetal.set_node_maintenance("leased", reason="lessee admin")
    conns["owner-member"].baremetal.unset_node_maintenance("leased")
    with pytest.raises(sdk_exc.ForbiddenException, match="baremetal:node:set_provision_state"):
        conns["lessee-member"].baremetal.set_node_provision_state("leased", "manage")
    conns["lessee-admin"].baremetal.set_node_provision_state("leased", "manage")
    with pytest.raises(sdk_exc.ForbiddenException, match="baremetal:node:delete"):
        conns["lessee-admin"].baremetal.delete_node("leased")
    with pytest.raises(sdk_exc.ForbiddenException, match="baremetal:node:delete"):
        conns["owner-member"].baremetal.delete_node("leased")
    with pytest.raises(sdk_exc.ForbiddenException, match="baremetal:node:create"):
        conns["owner-member"].baremetal.create_node(name="mine", driver="fake-hardware")
    created = conns["owner-admin"].baremetal.create_node(name="mine", driver="fake-hardware")
    assert created.owner == conns["owner-admin"].current_project_id
    conns["owner-admin"].baremetal.delete_node("mine")
    with pytest.raises(sdk_exc.ForbiddenException, match="baremetal:node:create"):
        conns["system-reader"].baremetal.create_node(name="nope", driver="fake-hardware")
