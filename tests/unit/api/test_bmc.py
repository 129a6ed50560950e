"""BIOS settings (1.40, registry fields 1.74), firmware components (1.86) and the target RAID
configuration (1.12) through the API and a real conductor endpoint; the checks made before a
bios/firmware/raid clean step may start."""

from __future__ import annotations

import pytest

from agent.common import exception
from agent.conductor.drivers import redfish_bios, redfish_firmware
from agent.db import api as db_api
from agent.db import bios as db_bios
from agent.db import firmware as db_firmware
from tests.unit.api.conftest import error_of, wait_for_state


def _v(minor: int) -> dict[str, str]:
    return {"X-OpenStack-Ironic-API-Version": f"1.{minor}"}


RAID = {"logical_disks": [{"raid_level": "1", "size_gb": 100, "is_root_volume": True}]}
SETTINGS = [
    {"name": "ProcTurboMode", "value": "Enabled", "attribute_type": "Enumeration",
     "allowable_values": ["Enabled", "Disabled"], "reset_required": True, "read_only": False},
    {"name": "SerialNumber", "value": "QPX12345", "attribute_type": "String", "max_length": 16,
     "read_only": True},
]  # fmt: skip


def test_bios_settings_list_show_and_gating(api):
    node = api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "b1"}).json
    assert node["bios_interface"] == "no-bios"
    assert api.get("/v1/nodes/b1/bios").json == {"bios": []}
    api.get("/v1/nodes/b1/bios", headers=_v(39), status=404)
    changes = db_bios.replace_bios_settings(db_api.get_node(node["uuid"]).id, SETTINGS)
    assert changes == {"created": ["ProcTurboMode", "SerialNumber"], "updated": [], "deleted": []}

    plain = api.get("/v1/nodes/b1/bios", headers=_v(40)).json["bios"]
    assert [(s["name"], s["value"]) for s in plain] == [
        ("ProcTurboMode", "Enabled"),
        ("SerialNumber", "QPX12345"),
    ]
    assert set(plain[0]) == {"name", "value", "created_at", "updated_at", "links"}
    assert plain[0]["links"][0]["href"].endswith(f"/v1/nodes/{node['uuid']}/bios/ProcTurboMode")

    resp = api.get("/v1/nodes/b1/bios?detail=True", headers=_v(73), status=406)
    assert "1.74" in error_of(resp)
    api.get("/v1/nodes/b1/bios?fields=name", headers=_v(73), status=406)
    detail = api.get("/v1/nodes/b1/bios?detail=True").json["bios"]
    assert detail[0]["allowable_values"] == ["Enabled", "Disabled"] and detail[0]["reset_required"] is True
    assert detail[1]["read_only"] is True and detail[1]["max_length"] == 16
    picked = api.get("/v1/nodes/b1/bios?fields=name,read_only").json["bios"]
    assert [set(s) for s in picked] == [{"name", "read_only", "links"}] * 2
    resp = api.get("/v1/nodes/b1/bios?fields=name,colour", status=400)
    assert "colour" in error_of(resp)
    api.get("/v1/nodes/b1/bios?fields=name&detail=True", status=400)

    one = api.get("/v1/nodes/b1/bios/ProcTurboMode").json
    assert (
        one["ProcTurboMode"]["value"] == "Enabled" and one["ProcTurboMode"]["attribute_type"] == "Enumeration"
    )
    old = api.get("/v1/nodes/b1/bios/ProcTurboMode", headers=_v(73)).json["ProcTurboMode"]
    assert "attribute_type" not in old
    resp = api.get("/v1/nodes/b1/bios/NoSuch", status=404)
    assert error_of(resp) == f"Node {node['uuid']} doesn't have a BIOS setting 'NoSuch'"

    # A later read replaces the cache: changed values are updated, vanished ones removed.
    later = [{**SETTINGS[0], "value": "Disabled"}]
    changes = db_bios.replace_bios_settings(db_api.get_node(node["uuid"]).id, later)
    assert changes == {"created": [], "updated": ["ProcTurboMode"], "deleted": ["SerialNumber"]}
    assert [s["value"] for s in api.get("/v1/nodes/b1/bios").json["bios"]] == ["Disabled"]


def test_firmware_components_and_gating(api):
    node = api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "f1"}).json
    node_id = db_api.get_node(node["uuid"]).id
    db_firmware.record_firmware_versions(node_id, {"bios": "1.0.0", "bmc": "2.1"})
    db_firmware.record_firmware_versions(node_id, {"bios": "1.1.0"}, flashed=("bios",))
    got = api.get("/v1/nodes/f1/firmware").json["firmware"]
    assert [
        (c["component"], c["initial_version"], c["current_version"], c["last_version_flashed"]) for c in got
    ] == [
        ("bios", "1.0.0", "1.1.0", "1.1.0"),
        ("bmc", "2.1", "2.1", None),
    ]
    assert api.get("/v1/nodes/f1/firmware?fields=component").json == {
        "firmware": [{"component": "bios"}, {"component": "bmc"}]
    }
    api.get("/v1/nodes/f1/firmware", headers=_v(85), status=404)


def test_interfaces_are_checked_against_the_enabled_ones(api):
    resp = api.post_json("/v1/nodes", {"driver": "fake-hardware", "bios_interface": "redfish"}, status=400)
    assert "bios_interface" in error_of(resp) and "enabled_bios_interfaces" in error_of(resp)
    resp = api.post_json("/v1/nodes", {"driver": "fake-hardware", "raid_interface": "hw"}, status=400)
    assert "raid_interface" in error_of(resp) and "no-raid, agent" in error_of(resp)
    node = api.post_json("/v1/nodes", {"driver": "fake-hardware", "raid_interface": "agent"}).json
    assert (node["raid_interface"], node["firmware_interface"]) == ("agent", "no-firmware")
    api.post_json(
        "/v1/nodes", {"driver": "fake-hardware", "bios_interface": "no-bios"}, headers=_v(39), status=406
    )


def test_target_raid_config_validated_stored_and_cleared(api):
    api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "r0"})
    resp = api.put_json("/v1/nodes/r0/states/raid", RAID, status=404)
    assert "does not support raid" in error_of(resp)
    api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "r1", "raid_interface": "agent"})
    api.put_json("/v1/nodes/r1/states/raid", RAID, headers=_v(11), status=406)
    api.put_json("/v1/nodes/r1/states/raid", RAID, status=204)
    assert api.get("/v1/nodes/r1").json["target_raid_config"] == RAID
    assert api.get("/v1/nodes/r1/states").json["target_raid_config"] == RAID
    assert api.get("/v1/nodes/r1").json["raid_config"] == {}
    for bad, where in (
        ({"logical_disks": [{"raid_level": "7", "size_gb": 10}]}, "logical_disks[0].raid_level"),
        ({"logical_disks": [{"raid_level": "1", "size_gb": 0}]}, "logical_disks[0].size_gb"),
        ({"logical_disks": [{"raid_level": "1", "size_gb": 10, "colour": "red"}]}, "'colour' was unexpected"),
        ({"logical_disks": [{"raid_level": "1", "size_gb": "MAX", "physical_disks": ["d1"]}]}, "controller"),
        ({"logical_disks": []}, "logical_disks"),
        ({"disks": []}, "'logical_disks' is a required property"),
        (
            {"logical_disks": [{"raid_level": "1", "size_gb": 1, "is_root_volume": True}] * 2},
            "more than one root volume",
        ),
    ):
        resp = api.put_json("/v1/nodes/r1/states/raid", bad, status=400)
        assert where in error_of(resp), (bad, error_of(resp))
    assert api.get("/v1/nodes/r1").json["target_raid_config"] == RAID  # nothing lost
    resp = api.put_json("/v1/nodes/r1/states/raid", [RAID], status=400)
    assert "JSON object" in error_of(resp)
    patch = [{"op": "replace", "path": "/target_raid_config", "value": {}}]
    api.patch_json("/v1/nodes/r1", patch, status=400)
    api.put_json("/v1/nodes/r1/states/raid", {}, status=204)
    assert api.get("/v1/nodes/r1").json["target_raid_config"] == {}


def _manageable(api, name: str, **fields) -> None:
    api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": name, **fields})
    api.put_json(f"/v1/nodes/{name}/states/provision", {"target": "manage"}, status=202)
    wait_for_state(api, name, "manageable")


def _clean(api, name: str, steps: list, status: int = 400) -> str:
    resp = api.put_json(
        f"/v1/nodes/{name}/states/provision", {"target": "clean", "clean_steps": steps}, status=status
    )
    return error_of(resp) if status >= 400 else ""


def test_conductor_steps_are_refused_before_cleaning_starts(api):
    _manageable(api, "c1", raid_interface="agent")
    apply = {"interface": "bios", "step": "apply_configuration", "args": {"settings": []}}
    message = _clean(api, "c1", [apply])
    assert "bios.apply_configuration is not offered by bios_interface no-bios" in message
    message = _clean(api, "c1", [{"interface": "raid", "step": "create_configuration"}])
    assert "runs in the agent ramdisk" in message and "raid_interface redfish" in message
    message = _clean(api, "c1", [{"interface": "raid", "step": "rebuild"}])
    assert "raid.rebuild is not offered by raid_interface agent" in message
    message = _clean(api, "c1", [{"interface": "firmware", "step": "update"}])
    assert "not offered by firmware_interface no-firmware" in message
    node = api.get("/v1/nodes/c1").json
    assert (node["provision_state"], node["last_error"]) == ("manageable", None)  # nothing started


def test_step_arguments_are_checked_without_a_bmc():
    with pytest.raises(exception.InvalidParameterValue, match=r"settings\[1\] must be"):
        redfish_bios.check_settings("n1", [{"name": "A", "value": 1}, {"name": "B"}], {})
    with pytest.raises(exception.InvalidParameterValue, match="non-empty list"):
        redfish_bios.check_settings("n1", [], {})
    current = {s["name"]: s for s in SETTINGS}
    assert redfish_bios.check_settings("n1", [{"name": "ProcTurboMode", "value": "Disabled"}], current) == {
        "ProcTurboMode": "Disabled"
    }
    with pytest.raises(exception.InvalidParameterValue, match="'Turbo' is not an allowed value"):
        redfish_bios.check_settings("n1", [{"name": "ProcTurboMode", "value": "Turbo"}], current)
    with pytest.raises(exception.InvalidParameterValue, match="is read-only"):
        redfish_bios.check_settings("n1", [{"name": "SerialNumber", "value": "X"}], current)
    with pytest.raises(exception.InvalidParameterValue, match="has no BIOS setting 'Colour'"):
        redfish_bios.check_settings("n1", [{"name": "Colour", "value": "X"}], current)
    good = [{"component": "bios", "url": "http://192.0.2.1/bios.bin"}]
    assert redfish_firmware.check_settings("n1", good) == good
    with pytest.raises(exception.InvalidParameterValue, match="component 'nic' is not one of bios, bmc"):
        redfish_firmware.check_settings("n1", [{"component": "nic", "url": "http://192.0.2.1/x"}])
    with pytest.raises(exception.InvalidParameterValue, match="is not an http"):
        redfish_firmware.check_settings("n1", [{"component": "bmc", "url": "ftp://192.0.2.1/x"}])
