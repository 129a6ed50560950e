"""Virtual media (1.89) through the conductor's fake management; firmware components (1.86);
instance_name (1.104) following instance_info's display_name."""

from __future__ import annotations

from agent.db import api as db_api
from tests.unit.api.conftest import error_of


def _node(api, name):
    return api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": name}).json


def test_vmedia_attach_detach_on_fake_management(api):
    node = _node(api, "vm")
    body = {"device_type": "cdrom", "image_url": "http://192.0.2.1/ramdisk.iso"}
    api.post_json("/v1/nodes/vm/vmedia", body, status=204)
    media = db_api.get_node(node["uuid"]).driver_internal_info["fake_virtual_media"]
    assert media == {"cdrom": {"image_url": "http://192.0.2.1/ramdisk.iso", "image_download_source": "local"}}
    resp = api.post_json("/v1/nodes/vm/vmedia", {**body, "device_type": "tape"}, status=400)
    assert "device_type 'tape'" in error_of(resp)
    api.post_json("/v1/nodes/vm/vmedia", body, headers={"X-OpenStack-Ironic-API-Version": "1.88"}, status=404)
    api.delete("/v1/nodes/vm/vmedia", status=204)
    assert db_api.get_node(node["uuid"]).driver_internal_info["fake_virtual_media"] == {}
    api.post_json("/v1/nodes/5c9dcd04-2073-49bc-9618-99ae634d8971/vmedia", body, status=404)


def test_firmware_and_instance_name(api):
    node = _node(api, "fw")
    assert node["firmware_interface"] == "no-firmware"
    assert api.get("/v1/nodes/fw/firmware").json == {"firmware": []}
    resp = api.post_json(
        "/v1/nodes", {"driver": "fake-hardware", "firmware_interface": "redfish"}, status=400
    )
    assert "no-firmware" in error_of(resp)
    info = [{"op": "add", "path": "/instance_info", "value": {"display_name": "web-1"}}]
    assert api.patch_json("/v1/nodes/fw", info).json["instance_name"] == "web-1"
    api.patch_json("/v1/nodes/fw", [{"op": "replace", "path": "/instance_name", "value": "mine"}])
    info[0]["value"] = {"display_name": "web-2"}
    assert api.patch_json("/v1/nodes/fw", info).json["instance_name"] == "mine"
    assert [n["uuid"] for n in api.get("/v1/nodes?instance_name=mine").json["nodes"]] == [node["uuid"]]
    assert (
        "instance_name"
        not in api.get("/v1/nodes/fw", headers={"X-OpenStack-Ironic-API-Version": "1.103"}).json
    )


def test_shards_and_events(api):
    for name, shard in (("s1", "rack-a"), ("s2", "rack-a"), ("s3", "rack-b"), ("s4", None)):
        body = {"driver": "fake-hardware", "name": name, **({"shard": shard} if shard else {})}
        api.post_json("/v1/nodes", body)
    assert api.get("/v1/shards").json == {
        "shards": [{"name": "rack-a", "count": 2}, {"name": "rack-b", "count": 1}]
    }
    assert [n["name"] for n in api.get("/v1/nodes?shard=rack-a").json["nodes"]] == ["s1", "s2"]
    api.get("/v1/shards", headers={"X-OpenStack-Ironic-API-Version": "1.81"}, status=404)
    event = {
        "event": "network.bind_port",
        "port_id": "5c9dcd04-2073-49bc-9618-99ae634d8971",
        "status": "ACTIVE",
    }
    api.post_json("/v1/events", {"events": [event]}, status=204)
    resp = api.post_json("/v1/events", {"events": [{**event, "event": "compute.reboot"}]}, status=400)
    assert "events[0].event" in error_of(resp)
    resp = api.post_json("/v1/events", {"events": [{**event, "port_id": "p1"}]}, status=400)
    assert "port_id must be a UUID" in error_of(resp)


def test_console_answers_not_supported(api):
    node = _node(api, "con")
    for resp in (
        api.get("/v1/nodes/con/states/console", status=400),
        api.put_json("/v1/nodes/con/states/console", {"enabled": True}, status=400),
    ):
        assert f"Node {node['uuid']}: the serial console is not supported" in error_of(resp)
    resp = api.put_json("/v1/nodes/con/states/console", {"enabled": "yes"}, status=400)
    assert '{"enabled": true}' in error_of(resp)
    api.get("/v1/nodes/5c9dcd04-2073-49bc-9618-99ae634d8971/states/console", status=404)
