"""Runbooks (1.92, traits 1.112) and inspection rules (1.96) through the API; the rule language."""

from __future__ import annotations

from agent.common import rules
from tests.unit.api.conftest import error_of

STEP = {"interface": "deploy", "step": "erase_devices_metadata", "args": {}, "order": 10}


def test_runbook_names_steps_and_traits(api):
    old = {"X-OpenStack-Ironic-API-Version": "1.92"}
    resp = api.post_json("/v1/runbooks", {"name": "wipe", "steps": [STEP]}, headers=old, status=400)
    assert "invalid trait" in error_of(resp)
    made = api.post_json("/v1/runbooks", {"name": "wipe", "steps": [STEP]}, status=201).json
    assert (made["name"], made["traits"], made["steps"]) == ("wipe", [], [STEP])
    resp = api.post_json("/v1/runbooks", {"name": "x", "steps": [{**STEP, "priority": 1}]}, status=400)
    assert "order" in error_of(resp)
    api.put_json("/v1/runbooks/wipe/traits", {"traits": ["CUSTOM_B", "CUSTOM_A"]}, status=204)
    api.put("/v1/runbooks/wipe/traits/CUSTOM_C", status=204)
    api.delete("/v1/runbooks/wipe/traits/CUSTOM_A", status=204)
    api.delete("/v1/runbooks/wipe/traits/CUSTOM_NONE", status=204)
    assert api.get("/v1/runbooks/wipe").json["traits"] == ["CUSTOM_B", "CUSTOM_C"]
    assert "traits" not in api.get("/v1/runbooks/wipe", headers=old).json
    api.get("/v1/runbooks", headers={"X-OpenStack-Ironic-API-Version": "1.91"}, status=404)


def test_inspection_rule_validation_and_sensitive(api):
    body = {
        "conditions": [{"op": "ge", "args": ["{inventory.memory.physical_mb}", 4096]}],
        "actions": [{"op": "add-trait", "args": ["CUSTOM_BIG"]}],
        "sensitive": True,
        "priority": 5,
    }
    made = api.post_json("/v1/inspection_rules", body, status=201).json
    assert (made["conditions"], made["actions"], made["phase"]) == (None, None, "main")
    resp = api.post_json("/v1/inspection_rules", {**body, "actions": [{"op": "explode"}]}, status=400)
    assert "unknown action 'explode'" in error_of(resp)
    resp = api.post_json(
        "/v1/inspection_rules", {**body, "conditions": [{"op": "eq", "args": [1]}]}, status=400
    )
    assert "takes 2 to 2 arguments" in error_of(resp)
    resp = api.post_json("/v1/inspection_rules", {"actions": []}, status=400)
    assert "at least one action" in error_of(resp)


def test_rule_conditions():
    sources = {"inventory": {"memory": {"physical_mb": 8192}, "interfaces": [{"ipv4_address": "10.0.0.5"}]}}
    assert rules.check_condition({"op": "ge", "args": ["{inventory.memory.physical_mb}", 4096]}, sources)
    assert not rules.check_condition({"op": "!ge", "args": ["{inventory.memory.physical_mb}", 4096]}, sources)
    loop = {"op": "in-net", "args": ["{item.ipv4_address}", "10.0.0.0/24"], "loop": "{inventory.interfaces}"}
    assert rules.check_condition(loop, sources)
    assert not rules.check_condition({**loop, "args": ["{item.ipv4_address}", "192.168.0.0/16"]}, sources)
    assert rules.check_condition({"op": "is-none", "args": ["{inventory.missing}"]}, sources)


def test_runbook_cleans_a_manageable_node_with_its_trait(api):
    from tests.unit.api.conftest import wait_for_state

    api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "rb"})
    api.put_json("/v1/nodes/rb/states/provision", {"target": "manage"})
    wait_for_state(api, "rb", "manageable")
    api.post_json("/v1/runbooks", {"name": "CUSTOM_WIPE", "steps": [STEP]}, status=201)
    bios = {"interface": "bios", "step": "apply_configuration", "args": {}, "order": 1}
    api.post_json("/v1/runbooks", {"name": "CUSTOM_BIOS", "steps": [STEP, bios]}, status=201)
    resp = api.put_json(
        "/v1/nodes/rb/states/provision", {"target": "clean", "runbook": "CUSTOM_WIPE"}, status=400
    )
    assert "has none of its traits (CUSTOM_WIPE)" in error_of(resp)
    api.put_json("/v1/nodes/rb/traits", {"traits": ["CUSTOM_WIPE", "CUSTOM_BIOS"]}, status=204)
    # The runbook's steps are the clean steps: one Kiln cannot run is refused, naming it.
    resp = api.put_json(
        "/v1/nodes/rb/states/provision", {"target": "clean", "runbook": "CUSTOM_BIOS"}, status=400
    )
    assert "bios.apply_configuration is not offered by bios_interface no-bios" in error_of(resp)
    resp = api.put_json(
        "/v1/nodes/rb/states/provision", {"target": "service", "runbook": "CUSTOM_WIPE"}, status=400
    )
    api.put_json("/v1/nodes/rb/states/provision", {"target": "clean", "runbook": "CUSTOM_WIPE"}, status=202)
    node = wait_for_state(api, "rb", "manageable")
    assert node["last_error"] is None
