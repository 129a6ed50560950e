"""Chassis, volume connectors and targets, deploy templates through the API on a real database."""

from __future__ import annotations

import time

from tests.unit.api.conftest import error_of


def _node(api, name, **values):
    return api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": name, **values}).json


def test_chassis_crud_nodes_and_not_empty(api):
    created = api.post_json("/v1/chassis", {"description": "rack 7", "extra": {"row": 3}}, status=201).json
    assert (created["description"], created["extra"]) == ("rack 7", {"row": 3})
    node = _node(api, "in-rack", chassis_uuid=created["uuid"])
    assert node["chassis_uuid"] == created["uuid"]
    listed = api.get(f"/v1/chassis/{created['uuid']}/nodes").json["nodes"]
    assert [n["uuid"] for n in listed] == [node["uuid"]]
    resp = api.delete(f"/v1/chassis/{created['uuid']}", status=400)
    assert "contains nodes" in error_of(resp)
    api.patch_json(f"/v1/nodes/{node['uuid']}", [{"op": "remove", "path": "/chassis_uuid"}])
    patched = api.patch_json(
        f"/v1/chassis/{created['uuid']}", [{"op": "add", "path": "/extra/answer", "value": 42}]
    ).json
    assert patched["extra"] == {"row": 3, "answer": 42}
    assert api.get("/v1/chassis?fields=uuid").json["chassis"][0].keys() == {"uuid", "links"}
    resp = api.post_json("/v1/chassis", {"description": "x" * 256}, status=400)
    assert "at most 255" in error_of(resp)
    api.delete(f"/v1/chassis/{created['uuid']}", status=204)
    api.get(f"/v1/chassis/{created['uuid']}", status=404)
    resp = api.post_json(
        "/v1/nodes", {"driver": "fake-hardware", "chassis_uuid": created["uuid"]}, status=400
    )
    assert "could not be found" in error_of(resp)


def test_volume_connectors_and_targets(api):
    node = _node(api, "vol")
    body = {"node_uuid": node["uuid"], "type": "iqn", "connector_id": "iqn.2026-12.org.kiln:01"}
    resp = api.post_json("/v1/volume/connectors", body, status=400)
    assert "power state" in error_of(resp)
    api.put_json(f"/v1/nodes/{node['uuid']}/states/power", {"target": "power off"})
    for _ in range(100):
        if api.get(f"/v1/nodes/{node['uuid']}").json["power_state"] == "power off":
            break
        time.sleep(0.05)
    conn = api.post_json("/v1/volume/connectors", body, status=201).json
    assert (conn["node_uuid"], conn["type"]) == (node["uuid"], "iqn")
    resp = api.post_json("/v1/volume/connectors", body, status=409)
    assert "already exists" in error_of(resp)
    resp = api.post_json("/v1/volume/connectors", {**body, "type": "nfs"}, status=400)
    assert "iqn, ip, mac" in error_of(resp)
    target = {"node_uuid": node["uuid"], "volume_type": "iscsi", "boot_index": 0, "volume_id": "v1"}
    made = api.post_json("/v1/volume/targets", target, status=201).json
    api.post_json("/v1/volume/targets", {**target, "volume_id": "v2"}, status=409)
    resp = api.post_json("/v1/volume/targets", {**target, "boot_index": "one"}, status=400)
    assert "boot_index" in error_of(resp)
    mine = api.get(f"/v1/nodes/{node['uuid']}/volume/targets").json["targets"]
    assert [t["uuid"] for t in mine] == [made["uuid"]]
    # The volume resources take ?detail= from 1.32 on, as openstacksdk sends it, not only from 1.43.
    at_132 = {"X-OpenStack-Ironic-API-Version": "1.32"}
    listed = api.get("/v1/volume/targets?detail=True", headers=at_132).json["targets"]
    assert listed[0]["volume_id"] == "v1" and "properties" in listed[0]
    brief = api.get("/v1/volume/targets?detail=False", headers=at_132).json["targets"]
    assert "properties" not in brief[0]
    assert api.get("/v1/volume/connectors", headers={"X-OpenStack-Ironic-API-Version": "1.31"}, status=404)
    api.delete(f"/v1/volume/connectors/{conn['uuid']}", status=204)
    api.get(f"/v1/volume/connectors/{conn['uuid']}", status=404)


def test_deploy_templates_validation(api):
    step = {"interface": "bios", "step": "apply_configuration", "args": {}, "priority": 150}
    made = api.post_json("/v1/deploy_templates", {"name": "CUSTOM_HT_ON", "steps": [step]}, status=201).json
    assert made["steps"] == [step]
    api.post_json("/v1/deploy_templates", {"name": "CUSTOM_HT_ON", "steps": [step]}, status=409)
    resp = api.post_json("/v1/deploy_templates", {"name": "lower", "steps": [step]}, status=400)
    assert "invalid trait" in error_of(resp)
    resp = api.post_json("/v1/deploy_templates", {"name": "CUSTOM_X", "steps": []}, status=400)
    assert "non-empty" in error_of(resp)
    bad = {**step, "interface": "vendor"}
    resp = api.post_json("/v1/deploy_templates", {"name": "CUSTOM_X", "steps": [bad]}, status=400)
    assert "steps[0].interface" in error_of(resp)
    resp = api.post_json("/v1/deploy_templates", {"name": "CUSTOM_X", "steps": [step, step]}, status=400)
    assert "repeats" in error_of(resp)
    api.get("/v1/deploy_templates", headers={"X-OpenStack-Ironic-API-Version": "1.54"}, status=404)
    assert [t["name"] for t in api.get("/v1/deploy_templates").json["deploy_templates"]] == ["CUSTOM_HT_ON"]
