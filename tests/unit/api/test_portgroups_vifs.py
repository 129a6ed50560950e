"""Portgroups (/v1/portgroups) and VIFs (/v1/nodes/{node}/vifs) through the API and a real conductor."""

from __future__ import annotations

import pytest
from oslo_config import cfg

from tests.unit.api.conftest import error_of

CONF = cfg.CONF

NETWORKS = """
[conductor]
enabled_network_interfaces = noop,flat

[network]
provisioning_network = provision

[network:provision]
vlan_id = 100
shared = true

[network:tenant-a]
vlan_id = 210
project = project-a

[network:tenant-b]
vlan_id = 220
project = project-b

[network:public]
vlan_id = 300
shared = true

[network:storage]
vlan_id = 400
shared = true
physical_network = dc2
"""


@pytest.fixture
def networks(conductor, tmp_path):
    """The conductor reads a config file declaring four networks."""
    conf = tmp_path / "networks.conf"
    conf.write_text(NETWORKS)
    CONF(["--config-file", str(conf)], project="kiln")
    yield conf
    CONF([], project="kiln")


def _node(api, name, **values):
    return api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": name, **values}).json


def _port(api, node, mac, **values):
    return api.post_json("/v1/ports", {"address": mac, "node_uuid": node["uuid"], **values}).json


def test_portgroup_crud_modes_and_members(api):
    node = _node(api, "pg-node")
    other = _node(api, "pg-other")
    resp = api.post_json(
        "/v1/portgroups",
        {
            "node_uuid": node["uuid"],
            "name": "bond0",
            "address": "52:54:00:AA:00:01",
            "mode": "802.3ad",
            "properties": {"miimon": 100, "xmit_hash_policy": "layer3+4"},
        },
    )
    assert resp.status_int == 201
    pg = resp.json
    assert resp.headers["Location"].endswith(f"/v1/portgroups/{pg['uuid']}")
    assert pg["address"] == "52:54:00:aa:00:01"
    assert pg["mode"] == "802.3ad"
    assert pg["properties"] == {"miimon": 100, "xmit_hash_policy": "layer3+4"}
    assert pg["standalone_ports_supported"] is True
    assert pg["node_uuid"] == node["uuid"]
    assert pg["ports"][0]["href"].endswith(f"/v1/portgroups/{pg['uuid']}/ports")
    default = api.post_json("/v1/portgroups", {"node_uuid": node["uuid"], "name": "bond1"}).json
    assert default["mode"] == "active-backup"
    assert [set(p) for p in api.get("/v1/portgroups").json["portgroups"]] == [
        {"uuid", "address", "name", "links"}
    ] * 2
    # Ironic's gating: no portgroups before 1.23, no mode/properties before 1.26.
    old = {"X-OpenStack-Ironic-API-Version": "1.22"}
    api.get("/v1/portgroups", headers=old, status=404)
    v25 = {"X-OpenStack-Ironic-API-Version": "1.25"}
    assert "mode" not in api.get("/v1/portgroups/bond0", headers=v25).json
    resp = api.post_json(
        "/v1/portgroups", {"node_uuid": node["uuid"], "mode": "802.3ad"}, headers=v25, status=406
    )
    assert "mode" in error_of(resp)
    resp = api.post_json("/v1/portgroups", {"node_uuid": node["uuid"], "mode": "lacp"}, status=400)
    assert "mode 'lacp' is not a Linux bonding mode" in error_of(resp)
    resp = api.post_json("/v1/portgroups", {"node_uuid": node["uuid"], "name": "bond0"}, status=409)
    assert error_of(resp) == "A portgroup with name bond0 already exists."
    resp = api.post_json("/v1/portgroups", {"node_uuid": node["uuid"], "color": "red"}, status=400)
    assert "Unknown field(s) in the portgroup: color" in error_of(resp)
    patched = api.patch_json(
        "/v1/portgroups/bond0", [{"op": "replace", "path": "/mode", "value": "balance-rr"}]
    ).json
    assert patched["mode"] == "balance-rr"
    resp = api.patch_json("/v1/portgroups/bond0", [{"op": "remove", "path": "/mode"}], status=400)
    assert "mandatory" in error_of(resp)
    # Ports join a portgroup of their own node only.
    port = _port(api, node, "52:54:00:aa:00:11", portgroup_uuid=pg["uuid"])
    assert port["portgroup_uuid"] == pg["uuid"]
    resp = api.post_json(
        "/v1/ports",
        {"address": "52:54:00:aa:00:99", "node_uuid": other["uuid"], "portgroup_uuid": pg["uuid"]},
        status=400,
    )
    assert "not associated with the same node" in error_of(resp)
    members = api.get(f"/v1/portgroups/{pg['uuid']}/ports").json["ports"]
    assert [p["uuid"] for p in members] == [port["uuid"]]
    assert api.get(f"/v1/ports?portgroup={pg['uuid']}").json["ports"][0]["uuid"] == port["uuid"]
    # A group that supports no standalone ports takes no PXE-enabled port (Ironic's rule).
    api.patch_json(
        "/v1/portgroups/bond1", [{"op": "replace", "path": "/standalone_ports_supported", "value": False}]
    )
    resp = api.post_json(
        "/v1/ports",
        {"address": "52:54:00:aa:00:12", "node_uuid": node["uuid"], "portgroup_uuid": "bond1"},
        status=409,
    )
    assert "doesn't support standalone ports" in error_of(resp)
    quiet = _port(api, node, "52:54:00:aa:00:12", portgroup_uuid="bond1", pxe_enabled=False)
    resp = api.patch_json(
        f"/v1/ports/{quiet['uuid']}", [{"op": "replace", "path": "/pxe_enabled", "value": True}], status=409
    )
    assert f"This port {quiet['uuid']} cannot be a member" in error_of(resp)
    api.delete(f"/v1/ports/{quiet['uuid']}", status=204)
    names = [p["name"] for p in api.get("/v1/nodes/pg-node/portgroups").json["portgroups"]]
    assert names == ["bond0", "bond1"]
    assert api.get("/v1/nodes/pg-other/portgroups").json["portgroups"] == []
    resp = api.delete(f"/v1/portgroups/{pg['uuid']}", status=400)
    assert f"portgroup {pg['uuid']} contains ports" in error_of(resp)
    api.patch_json(f"/v1/ports/{port['uuid']}", [{"op": "replace", "path": "/portgroup_uuid", "value": None}])
    assert api.get(f"/v1/ports/{port['uuid']}").json["portgroup_uuid"] is None
    api.delete(f"/v1/portgroups/{pg['uuid']}", status=204)
    api.get(f"/v1/portgroups/{pg['uuid']}", status=404)
    api.delete("/v1/nodes/pg-node", status=204)
    assert api.get("/v1/portgroups").json["portgroups"] == []


def test_vif_attach_list_detach(api, networks):
    node = _node(api, "vif-node", owner="project-a", network_interface="flat")
    pg = api.post_json("/v1/portgroups", {"node_uuid": node["uuid"], "name": "vbond"}).json
    _port(api, node, "52:54:00:bb:00:01", portgroup_uuid=pg["uuid"])
    _port(api, node, "52:54:00:bb:00:02", portgroup_uuid=pg["uuid"])
    lone = _port(api, node, "52:54:00:bb:00:03")
    api.get("/v1/nodes/vif-node/vifs", headers={"X-OpenStack-Ironic-API-Version": "1.27"}, status=404)
    assert api.get("/v1/nodes/vif-node/vifs").json == {"vifs": []}
    api.post_json("/v1/nodes/vif-node/vifs", {"id": "tenant-a"}, status=204)
    # A portgroup is preferred, as in Ironic; the VIF is kept in its internal_info.
    assert api.get("/v1/portgroups/vbond?fields=internal_info").json["internal_info"] == {
        "tenant_vif_port_id": "tenant-a"
    }
    resp = api.post_json("/v1/nodes/vif-node/vifs", {"id": "tenant-a"}, status=409)
    assert error_of(resp).startswith("Unable to attach VIF because VIF tenant-a is already attached")
    resp = api.post_json("/v1/nodes/vif-node/vifs", {"id": "tenant-b"}, status=403)
    assert "belongs to project project-b, but node" in error_of(resp)
    assert "used by project project-a" in error_of(resp)
    resp = api.post_json("/v1/nodes/vif-node/vifs", {"id": "provision"}, status=403)
    assert "service network" in error_of(resp)
    resp = api.post_json("/v1/nodes/vif-node/vifs", {"id": "nowhere"}, status=400)
    assert "Network nowhere is not declared" in error_of(resp)
    assert "[network:nowhere]" in error_of(resp)
    api.post_json("/v1/nodes/vif-node/vifs", {"id": "public"}, status=204)
    assert api.get(f"/v1/ports/{lone['uuid']}").json["internal_info"] == {"tenant_vif_port_id": "public"}
    assert sorted(v["id"] for v in api.get("/v1/nodes/vif-node/vifs").json["vifs"]) == ["public", "tenant-a"]
    api.delete("/v1/nodes/vif-node/vifs/public", status=204)
    resp = api.delete("/v1/nodes/vif-node/vifs/public", status=400)
    assert error_of(resp) == (
        f"Unable to detach VIF public from node {node['uuid']} because it is not attached to it."
    )
    # Leasing the node to another project while the owner's network is on it is refused...
    lease = [{"op": "add", "path": "/lessee", "value": "project-b"}]
    resp = api.patch_json("/v1/nodes/vif-node", lease, status=403)
    assert "VIF tenant-a on portgroup" in error_of(resp)
    assert "would no longer be allowed" in error_of(resp)
    assert api.get("/v1/nodes/vif-node").json["lessee"] is None
    # ... until it is detached; then the lessee's networks go on it, not the owner's.
    api.delete("/v1/nodes/vif-node/vifs/tenant-a", status=204)
    api.patch_json("/v1/nodes/vif-node", lease)
    resp = api.post_json("/v1/nodes/vif-node/vifs", {"id": "tenant-a"}, status=403)
    assert "used by project project-b" in error_of(resp)
    api.post_json("/v1/nodes/vif-node/vifs", {"id": "tenant-b"}, status=204)
    api.post_json("/v1/nodes/vif-node/vifs", {"id": "public"}, status=204)
    resp = api.post_json("/v1/nodes/vif-node/vifs", {"id": "provision"}, status=403)
    api.delete("/v1/nodes/vif-node/vifs/public", status=204)
    api.post_json("/v1/nodes/vif-node/vifs", {"id": "public", "port_uuid": lone["uuid"]}, status=204)
    resp = api.post_json(
        "/v1/nodes/vif-node/vifs",
        {"id": "x", "port_uuid": lone["uuid"], "portgroup_uuid": pg["uuid"]},
        status=400,
    )
    assert "not both" in error_of(resp)


def test_vif_refused_for_a_node_of_no_project_and_no_free_port(api, networks):
    node = _node(api, "bare", network_interface="flat")
    resp = api.post_json("/v1/nodes/bare/vifs", {"id": "tenant-a"}, status=403)
    assert f"node {node['uuid']} belongs to no project" in error_of(resp)
    resp = api.post_json("/v1/nodes/bare/vifs", {"id": "public"}, status=400)
    assert error_of(resp) == "Unable to attach VIF public, not enough free physical ports."
    # A network on a physical network only goes on ports of that physical network.
    _port(api, node, "52:54:00:ee:00:01", physical_network="dc1")
    resp = api.post_json("/v1/nodes/bare/vifs", {"id": "storage"}, status=400)
    assert error_of(resp) == "Unable to attach VIF storage, not enough free physical ports."
    dc2 = _port(api, node, "52:54:00:ee:00:02", physical_network="dc2", pxe_enabled=False)
    api.post_json("/v1/nodes/bare/vifs", {"id": "storage"}, status=204)
    assert api.get(f"/v1/ports/{dc2['uuid']}").json["internal_info"] == {"tenant_vif_port_id": "storage"}


def test_a_port_carrying_a_vif_of_an_active_node_is_not_deleted(api, networks):
    from tests.unit.api.conftest import wait_for_state

    node = _node(api, "busy", owner="project-a", network_interface="flat")
    port = _port(api, node, "52:54:00:cc:00:01")
    for verb, state in (("manage", "manageable"), ("provide", "available"), ("active", "active")):
        api.put_json("/v1/nodes/busy/states/provision", {"target": verb})
        wait_for_state(api, "busy", state)
        if state == "available":
            api.post_json("/v1/nodes/busy/vifs", {"id": "tenant-a"}, status=204)
    resp = api.delete(f"/v1/ports/{port['uuid']}", status=409)
    assert f"Cannot delete port {port['uuid']}: it carries VIF tenant-a of active node" in error_of(resp)
    api.delete("/v1/nodes/busy/vifs/tenant-a", status=204)
    api.delete(f"/v1/ports/{port['uuid']}", status=204)


def test_project_members_attach_only_their_own_or_shared_networks(api, conductor, networks):
    import webtest

    from agent.api import app as api_app
    from tests.unit.api.test_auth import _Identity

    env = {"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "latest"}
    node = _node(api, "leased-node", owner="project-a", lessee="project-b", network_interface="flat")
    _port(api, node, "52:54:00:dd:00:01")
    _port(api, node, "52:54:00:dd:00:02")

    def member(project, roles="member"):
        return webtest.TestApp(_Identity(api_app.ApiApp(conductor), project, roles), extra_environ=env)

    # Attaching a VIF takes the owner's member role or the lessee's admin role (Ironic's defaults).
    lessee, owner, stranger = member("project-b", "admin"), member("project-a"), member("project-c")
    member("project-b").post_json("/v1/nodes/leased-node/vifs", {"id": "tenant-b"}, status=403)
    lessee.post_json("/v1/nodes/leased-node/vifs", {"id": "tenant-b"}, status=204)
    resp = lessee.post_json("/v1/nodes/leased-node/vifs", {"id": "tenant-a"}, status=403)
    assert "not to the caller's project project-b" in error_of(resp)
    resp = owner.post_json("/v1/nodes/leased-node/vifs", {"id": "tenant-a"}, status=403)
    assert "is used by project project-b" in error_of(resp)
    stranger.post_json("/v1/nodes/leased-node/vifs", {"id": "public"}, status=404)
    assert lessee.get("/v1/nodes/leased-node/vifs").json == {"vifs": [{"id": "tenant-b"}]}


def test_noop_network_interface_accepts_any_vif_and_keeps_none(api, networks):
    # As Ironic's noop interface: attach and detach succeed, nothing is checked, stored or listed.
    node = _node(api, "noop-node", network_interface="noop")
    port = _port(api, node, "52:54:00:dd:00:01")
    api.post_json("/v1/nodes/noop-node/vifs", {"id": "200712fc-fdfb-47da-89a6-2d19f76c7618"}, status=204)
    assert api.get("/v1/nodes/noop-node/vifs").json == {"vifs": []}
    assert api.get(f"/v1/ports/{port['uuid']}?fields=internal_info").json["internal_info"] == {}
    api.delete("/v1/nodes/noop-node/vifs/200712fc-fdfb-47da-89a6-2d19f76c7618", status=204)
    api.get("/v1/nodes/nowhere/vifs", status=404)
