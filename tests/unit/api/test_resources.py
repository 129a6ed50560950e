"""Ports, allocations, drivers and conductors."""

from __future__ import annotations

import time

from tests.unit.api.conftest import error_of, wait_for_state


def _available(api, name, **values):
    api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": name, **values})
    api.put_json(f"/v1/nodes/{name}/states/provision", {"target": "manage"})
    wait_for_state(api, name, "manageable")
    api.put_json(f"/v1/nodes/{name}/states/provision", {"target": "provide"})
    return wait_for_state(api, name, "available")


def test_ports_crud_and_filters(api):
    node = api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "pn"}).json
    resp = api.post_json("/v1/ports", {"address": "52:54:00:AA:BB:01", "node_uuid": node["uuid"]})
    assert resp.status_int == 201
    port = resp.json
    assert port["address"] == "52:54:00:aa:bb:01"
    assert port["node_uuid"] == node["uuid"]
    assert port["pxe_enabled"] is True
    resp = api.post_json("/v1/ports", {"address": "52:54:00:aa:bb:01", "node_uuid": node["uuid"]}, status=409)
    assert "52:54:00:aa:bb:01" in error_of(resp)
    resp = api.post_json("/v1/ports", {"address": "zz:zz", "node_uuid": node["uuid"]}, status=400)
    assert error_of(resp) == "Expected a MAC address but received zz:zz."
    resp = api.post_json("/v1/ports", {"address": "52:54:00:aa:bb:02", "node_uuid": "nope"}, status=400)
    assert error_of(resp) == "Expected a UUID but received 'nope' for Port field node_uuid."
    api.post_json("/v1/ports", {"address": "52:54:00:aa:bb:02", "node_uuid": node["uuid"]})
    listed = api.get("/v1/ports").json["ports"]
    assert [set(p) for p in listed] == [{"uuid", "address", "links"}] * 2
    assert len(api.get("/v1/ports?address=52:54:00:AA:BB:02").json["ports"]) == 1
    assert len(api.get("/v1/nodes/pn/ports").json["ports"]) == 2
    assert api.get("/v1/nodes/pn/ports/detail").json["ports"][0]["node_uuid"] == node["uuid"]
    assert len(api.get(f"/v1/ports/detail?node={node['uuid']}").json["ports"]) == 2
    patched = api.patch_json(
        f"/v1/ports/{port['uuid']}", [{"op": "replace", "path": "/pxe_enabled", "value": False}]
    ).json
    assert patched["pxe_enabled"] is False
    resp = api.patch_json(f"/v1/ports/{port['uuid']}", [{"op": "remove", "path": "/address"}], status=400)
    assert "'/address' is a mandatory attribute" in error_of(resp)
    assert api.delete(f"/v1/ports/{port['uuid']}").status_int == 204
    api.get(f"/v1/ports/{port['uuid']}", status=404)


def test_boolean_fields_take_the_strings_the_cli_sends(api):
    """`baremetal port create --pxe-enabled true` sends the string "true", as Ironic accepts."""
    node = api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "pb"}).json
    body = {"address": "52:54:00:aa:bb:03", "node_uuid": node["uuid"], "pxe_enabled": "false"}
    assert api.post_json("/v1/ports", body).json["pxe_enabled"] is False
    body = {"address": "52:54:00:aa:bb:04", "node_uuid": node["uuid"], "pxe_enabled": "True"}
    port = api.post_json("/v1/ports", body).json
    assert port["pxe_enabled"] is True
    patch = [{"op": "replace", "path": "/pxe_enabled", "value": "no"}]
    assert api.patch_json(f"/v1/ports/{port['uuid']}", patch).json["pxe_enabled"] is False
    body = {"address": "52:54:00:aa:bb:05", "node_uuid": node["uuid"], "pxe_enabled": "maybe"}
    resp = api.post_json("/v1/ports", body, status=400)
    assert error_of(resp) == "Port field pxe_enabled must be true or false, not 'maybe'."


def _wait_allocation(api, uuid):
    for _ in range(200):
        alloc = api.get(f"/v1/allocations/{uuid}").json
        if alloc["state"] != "allocating":
            return alloc
        time.sleep(0.05)
    raise AssertionError(alloc)


def test_allocations_pick_matching_node(api):
    _available(api, "small", resource_class="gpu")
    big = _available(api, "big", resource_class="gpu")
    api.put_json("/v1/nodes/big/traits", {"traits": ["CUSTOM_NVLINK"]})
    resp = api.post_json(
        "/v1/allocations", {"resource_class": "gpu", "traits": ["CUSTOM_NVLINK"], "name": "a1"}
    )
    assert resp.status_int == 201
    assert resp.json["state"] == "allocating"
    alloc = _wait_allocation(api, resp.json["uuid"])
    assert alloc["state"] == "active"
    assert alloc["node_uuid"] == big["uuid"]
    node = api.get("/v1/nodes/big").json
    assert node["instance_uuid"] == alloc["uuid"]
    assert node["allocation_uuid"] == alloc["uuid"]
    assert api.get("/v1/nodes/big/allocation").json["uuid"] == alloc["uuid"]
    failed = _wait_allocation(
        api,
        api.post_json("/v1/allocations", {"resource_class": "gpu", "traits": ["CUSTOM_NVLINK"]}).json["uuid"],
    )
    assert failed["state"] == "error"
    assert "no available node with resource class gpu and traits CUSTOM_NVLINK" in failed["last_error"]
    assert [a["uuid"] for a in api.get("/v1/allocations?state=active").json["allocations"]] == [alloc["uuid"]]
    api.delete("/v1/allocations/a1")
    assert api.get("/v1/nodes/big").json["instance_uuid"] is None
    resp = api.post_json("/v1/allocations", {"traits": ["CUSTOM_X"]}, status=400)
    assert "resource_class" in error_of(resp)
    resp = api.post_json(
        "/v1/allocations", {"resource_class": "gpu", "candidate_nodes": ["ghost"]}, status=400
    )
    assert "Candidate node ghost could not be found" in error_of(resp)


def test_drivers_and_conductors(api):
    drivers = api.get("/v1/drivers").json["drivers"]
    assert [(d["name"], d["hosts"], d["type"]) for d in drivers] == [
        ("fake-hardware", ["test-conductor"], "dynamic")
    ]
    detail = api.get("/v1/drivers/fake-hardware").json
    assert detail["default_power_interface"] == "fake"
    assert detail["enabled_deploy_interfaces"] == ["fake"]
    assert (detail["default_bios_interface"], detail["enabled_raid_interfaces"]) == (
        "no-bios",
        ["no-raid", "agent"],
    )
    assert (detail["default_firmware_interface"], detail["enabled_firmware_interfaces"]) == (
        "no-firmware",
        ["no-firmware"],
    )
    older = api.get("/v1/drivers/fake-hardware", headers={"X-OpenStack-Ironic-API-Version": "1.85"}).json
    assert "default_firmware_interface" not in older and older["default_bios_interface"] == "no-bios"
    api.get("/v1/drivers/ipmi", status=404)
    conductors = api.get("/v1/conductors").json["conductors"]
    assert conductors[0]["hostname"] == "test-conductor"
    assert conductors[0]["alive"] is True
    assert set(conductors[0]) == {"hostname", "conductor_group", "alive", "links"}
    assert api.get("/v1/conductors/test-conductor").json["drivers"] == ["fake-hardware"]
