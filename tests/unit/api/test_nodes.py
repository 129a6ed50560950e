"""Nodes: create, show, list with filters/fields/pagination, PATCH, delete, and error codes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.api.conftest import error_of, wait_for_state

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sysfs"

OLD = {"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "1.10"}


def _create(api, **values):
    body = {"driver": "fake-hardware", **values}
    return api.post_json("/v1/nodes", body).json


def test_create_and_show(api):
    resp = api.post_json(
        "/v1/nodes",
        {
            "driver": "fake-hardware",
            "name": "gpu-001",
            "resource_class": "gpu.h100",
            "properties": {"cpus": 64},
        },
    )
    assert resp.status_int == 201
    node = resp.json
    assert resp.headers["Location"] == f"http://localhost/v1/nodes/{node['uuid']}"
    assert node["provision_state"] == "enroll"
    assert node["power_interface"] == "fake"
    assert node["conductor"] == "test-conductor"
    assert node["traits"] == []
    assert node["links"][0] == {"href": f"http://localhost/v1/nodes/{node['uuid']}", "rel": "self"}
    shown = api.get("/v1/nodes/gpu-001").json
    assert shown["uuid"] == node["uuid"]
    assert shown["properties"] == {"cpus": 64}
    assert "agent_token_hash" not in shown


def test_old_version_creates_available_and_hides_newer_fields(api):
    node = api.post_json("/v1/nodes", {"driver": "fake-hardware"}, extra_environ=OLD).json
    assert node["provision_state"] == "available"
    assert "resource_class" not in node
    assert "traits" not in node
    assert "name" in node


def test_field_newer_than_version_is_406(api):
    resp = api.post_json(
        "/v1/nodes", {"driver": "fake-hardware", "owner": "p1"}, extra_environ=OLD, status=406
    )
    assert "owner" in error_of(resp)


def test_unknown_field_is_400(api):
    resp = api.post_json("/v1/nodes", {"driver": "fake-hardware", "colour": "red"}, status=400)
    assert "Unknown field(s) in the node: colour" in error_of(resp)


def test_invalid_json_is_400(api):
    resp = api.post("/v1/nodes", "{not json", content_type="application/json", status=400)
    assert "not valid JSON" in error_of(resp)


def test_missing_driver_and_unknown_driver(api):
    assert "Missing required field(s) in the node: driver" in error_of(
        api.post_json("/v1/nodes", {}, status=400)
    )
    resp = api.post_json("/v1/nodes", {"driver": "ipmi"}, status=400)
    assert "No valid host was found" in error_of(resp)
    assert "ipmi" in error_of(resp)


def test_bad_name_and_duplicate_name(api):
    resp = api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "bad name"}, status=400)
    assert "Expected a logical name" in error_of(resp)
    _create(api, name="dup")
    resp = api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "dup"}, status=409)
    assert "dup" in error_of(resp)


def test_list_default_fields_detail_and_fields(api):
    for i in range(3):
        _create(api, name=f"n{i}", resource_class="small" if i else "large")
    listed = api.get("/v1/nodes").json["nodes"]
    assert [n["name"] for n in listed] == ["n0", "n1", "n2"]
    assert set(listed[0]) == {
        "uuid",
        "name",
        "instance_uuid",
        "power_state",
        "provision_state",
        "maintenance",
        "links",
    }
    detail = api.get("/v1/nodes/detail").json["nodes"]
    assert detail[0]["driver"] == "fake-hardware"
    assert api.get("/v1/nodes?detail=True").json["nodes"][1]["resource_class"] == "small"
    picked = api.get("/v1/nodes?fields=name,resource_class").json["nodes"]
    assert set(picked[0]) == {"name", "resource_class", "links"}
    resp = api.get("/v1/nodes?fields=name,bogus", status=400)
    assert 'Field(s) "bogus" are not valid' in error_of(resp)
    filtered = api.get("/v1/nodes?resource_class=small").json["nodes"]
    assert [n["name"] for n in filtered] == ["n1", "n2"]
    assert api.get("/v1/nodes?provision_state=enroll&maintenance=false").json["nodes"][0]["name"] == "n0"
    assert "must be a boolean" in error_of(api.get("/v1/nodes?maintenance=maybe", status=400))


def test_pagination_with_next_and_sorting(api):
    names = [f"p{i:02d}" for i in range(5)]
    for name in names:
        _create(api, name=name)
    page = api.get("/v1/nodes?limit=2&sort_key=name&sort_dir=desc").json
    assert [n["name"] for n in page["nodes"]] == ["p04", "p03"]
    assert "marker=" in page["next"] and "sort_key=name" in page["next"]
    seen = [n["name"] for n in page["nodes"]]
    while "next" in page:
        page = api.get(page["next"].replace("http://localhost", "")).json
        seen += [n["name"] for n in page["nodes"]]
    assert seen == sorted(names, reverse=True)
    assert "Invalid sort direction" in error_of(api.get("/v1/nodes?sort_dir=up", status=400))
    assert "invalid field for sorting" in error_of(api.get("/v1/nodes?sort_key=properties", status=400))
    assert "Limit must be positive" in error_of(api.get("/v1/nodes?limit=-1", status=400))


def test_patch_rules(api):
    node = _create(api, name="pn")
    patched = api.patch_json(
        "/v1/nodes/pn",
        [
            {"op": "add", "path": "/properties/cpus", "value": 8},
            {"op": "replace", "path": "/description", "value": "rack 4"},
            {"op": "replace", "path": "/name", "value": "pn2"},
        ],
    ).json
    assert patched["properties"] == {"cpus": 8}
    assert patched["description"] == "rack 4"
    assert patched["name"] == "pn2"
    resp = api.patch_json(
        f"/v1/nodes/{node['uuid']}",
        [{"op": "replace", "path": "/provision_state", "value": "active"}],
        status=400,
    )
    assert error_of(resp) == "'/provision_state' is an internal attribute and can not be updated"
    resp = api.patch_json(
        f"/v1/nodes/{node['uuid']}", [{"op": "add", "path": "/foo", "value": 1}], status=400
    )
    assert "Adding a new attribute (/foo)" in error_of(resp)
    resp = api.patch_json(f"/v1/nodes/{node['uuid']}", [{"op": "remove", "path": "/driver"}], status=400)
    assert "'/driver' is a mandatory attribute" in error_of(resp)
    resp = api.patch_json(
        f"/v1/nodes/{node['uuid']}", [{"op": "remove", "path": "/extra/nothere"}], status=400
    )
    assert "Cannot apply the node patch" in error_of(resp)
    resp = api.patch_json(
        f"/v1/nodes/{node['uuid']}", [{"op": "add", "path": "/traits", "value": []}], status=400
    )
    assert "node traits API" in error_of(resp)
    resp = api.patch_json(f"/v1/nodes/{node['uuid']}", {"op": "add"}, status=400)
    assert "non-empty JSON array" in error_of(resp)
    resp = api.patch_json(
        f"/v1/nodes/{node['uuid']}",
        [{"op": "replace", "path": "/power_interface", "value": "ipmi"}],
        status=400,
    )
    assert "power_interface" in error_of(resp)


def test_illegal_transition_is_400_and_delete_rules(api):
    node = _create(api, name="dn")
    resp = api.put_json("/v1/nodes/dn/states/provision", {"target": "active"}, status=400)
    assert 'The requested action "deploy" can not be performed on node' in error_of(resp)
    assert '"enroll"' in error_of(resp)
    resp = api.put_json("/v1/nodes/dn/states/provision", {"target": "fly"}, status=400)
    assert "not a known target" in error_of(resp)
    resp = api.put_json("/v1/nodes/dn/states/provision", {"target": "clean"}, status=400)
    assert "clean_steps" in error_of(resp)
    api.put_json("/v1/nodes/dn/states/provision", {"target": "manage"})
    wait_for_state(api, "dn", "manageable")
    api.put_json("/v1/nodes/dn/states/provision", {"target": "provide"})
    wait_for_state(api, "dn", "available")
    api.put_json("/v1/nodes/dn/states/provision", {"target": "active"})
    wait_for_state(api, "dn", "active")
    resp = api.delete("/v1/nodes/dn", status=409)
    assert 'while it is in provision state "active"' in error_of(resp)
    api.put_json("/v1/nodes/dn/states/provision", {"target": "deleted"})
    wait_for_state(api, "dn", "available")
    assert api.delete(f"/v1/nodes/{node['uuid']}").status_int == 204
    api.get(f"/v1/nodes/{node['uuid']}", status=404)


def test_locked_node_is_409(api, conductor):
    from agent.db import api as db_api

    node = _create(api, name="locked")
    db_api.reserve_node("someone-else", node["uuid"])
    resp = api.put_json("/v1/nodes/locked/states/provision", {"target": "manage"}, status=409)
    assert "locked by host someone-else" in error_of(resp)
    db_api.release_node("someone-else", node["uuid"])


def test_states_power_maintenance(api):
    _create(api, name="pw")
    states = api.get("/v1/nodes/pw/states").json
    assert states["provision_state"] == "enroll"
    assert "boot_mode" in states
    resp = api.put_json("/v1/nodes/pw/states/power", {"target": "power on"})
    assert resp.status_int == 202
    assert resp.headers["Location"].endswith("/states")
    _wait_power(api, "pw", "power on")
    resp = api.put_json("/v1/nodes/pw/states/power", {"target": "sideways"}, status=400)
    assert "Invalid power state target" in error_of(resp)
    api.put_json("/v1/nodes/pw/maintenance", {"reason": "fan"})
    node = api.get("/v1/nodes/pw").json
    assert node["maintenance"] is True and node["maintenance_reason"] == "fan"
    api.delete("/v1/nodes/pw/maintenance")
    node = api.get("/v1/nodes/pw").json
    assert node["maintenance"] is False and node["maintenance_reason"] is None


def _wait_power(api, ident, state):
    import time

    for _ in range(200):
        node = api.get(f"/v1/nodes/{ident}").json
        if node["power_state"] == state and node["target_power_state"] is None:
            return
        time.sleep(0.05)
    raise AssertionError(node)


def test_traits_api(api):
    _create(api, name="tr")
    assert (
        api.put_json("/v1/nodes/tr/traits", {"traits": ["CUSTOM_GPU", "HW_CPU_X86_AVX2"]}).status_int == 204
    )
    assert api.get("/v1/nodes/tr/traits").json == {"traits": ["CUSTOM_GPU", "HW_CPU_X86_AVX2"]}
    api.put("/v1/nodes/tr/traits/CUSTOM_NVLINK")
    assert "CUSTOM_NVLINK" in api.get("/v1/nodes/tr").json["traits"]
    api.delete("/v1/nodes/tr/traits/CUSTOM_GPU")
    resp = api.delete("/v1/nodes/tr/traits/CUSTOM_GPU", status=404)
    assert "doesn't have a trait 'CUSTOM_GPU'" in error_of(resp)
    resp = api.put("/v1/nodes/tr/traits/lower-case", status=400)
    assert "invalid trait 'lower-case'" in error_of(resp)
    api.delete("/v1/nodes/tr/traits")
    assert api.get("/v1/nodes/tr/traits").json == {"traits": []}


def test_boot_device_validate_inventory(api):
    node = _create(api, name="bd")
    assert api.get("/v1/nodes/bd/management/boot_device/supported").json == {
        "supported_boot_devices": ["pxe", "disk"]
    }
    api.put_json("/v1/nodes/bd/management/boot_device", {"boot_device": "pxe", "persistent": True})
    assert api.get("/v1/nodes/bd/management/boot_device").json == {"boot_device": "pxe", "persistent": True}
    resp = api.put_json("/v1/nodes/bd/management/boot_device", {"boot_device": "floppy"}, status=400)
    assert 'boot device "floppy" is not supported' in error_of(resp)
    result = api.get("/v1/nodes/bd/validate").json
    assert result["power"] == {"result": True, "reason": None}
    assert result["raid"] == {  # Ironic's no-raid fails validation, naming the driver
        "result": False,
        "reason": "Driver fake-hardware does not support raid (disabled or not implemented).",
    }
    assert result["console"] == {"result": None, "reason": "not supported"}
    resp = api.get("/v1/nodes/bd/inventory", status=404)
    assert "Inventory not found" in error_of(resp)
    from agent.db import api as db_api
    from agent.inventory import collect
    from agent.inventory.ironic import to_ironic

    kiln_inventory = collect.collect(str(FIXTURES / "h200-vm"), use_nvml=False)
    db_api.store_inventory(db_api.get_node(node["uuid"]).id, kiln_inventory)
    served = api.get("/v1/nodes/bd/inventory").json
    # Ironic's format (what ironic-python-agent sends), Kiln's own model kept under "kiln".
    assert served["inventory"] == json.loads(json.dumps(to_ironic(kiln_inventory)))
    assert served["inventory"]["interfaces"] and "firmware" in served["inventory"]["system_vendor"]
    assert served["inventory"]["kiln"]["nics"] == kiln_inventory["nics"]
    plugin = served["plugin_data"]
    assert set(plugin["all_interfaces"]) == {i["name"] for i in served["inventory"]["interfaces"]}
    assert plugin["root_disk"]["size"] == min(
        d["size"] for d in served["inventory"]["disks"] if d["size"] >= 4 << 30
    )
    api.get(
        "/v1/nodes/bd/inventory", extra_environ={"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "1.80"}, status=404
    )
    history = api.get("/v1/nodes/bd/history").json["history"]
    assert history[0]["event"] == "Inventory reported"


def test_patching_one_driver_info_key_keeps_the_masked_secrets(api):
    """A client shown "******" that patches another key must not overwrite the stored password."""
    from agent.db import api as db_api

    _create(api, name="bmc1", driver_info={"redfish_address": "http://a", "redfish_password": "s3cret"})
    shown = api.get("/v1/nodes/bmc1").json
    assert shown["driver_info"]["redfish_password"] == "******"
    api.patch_json(
        "/v1/nodes/bmc1", [{"op": "replace", "path": "/driver_info/redfish_address", "value": "http://b"}]
    )
    stored = db_api.get_node("bmc1").driver_info
    assert stored == {"redfish_address": "http://b", "redfish_password": "s3cret"}
    api.patch_json(
        "/v1/nodes/bmc1", [{"op": "replace", "path": "/driver_info/redfish_password", "value": "new"}]
    )
    assert db_api.get_node("bmc1").driver_info["redfish_password"] == "new"
