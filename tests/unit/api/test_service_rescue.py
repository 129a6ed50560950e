"""The service (1.87), unhold (1.85), rescue and unrescue (1.38) provision verbs through the API."""

from __future__ import annotations

import time

from agent.db import api as db_api
from tests.unit.api.conftest import error_of, wait_for_state

PROVISION = "/v1/nodes/{}/states/provision"
HOLD = {"interface": "deploy", "step": "hold"}
POWER_OFF = {"interface": "power", "step": "power_off"}


def _active(api, name: str) -> dict:
    api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": name})
    for target, state in (("manage", "manageable"), ("provide", "available"), ("active", "active")):
        api.put_json(PROVISION.format(name), {"target": target})
        wait_for_state(api, name, state)
    return api.get(f"/v1/nodes/{name}").json


def _wait_hold(api, name: str, timeout: float = 15.0) -> dict:
    """Wait until the node rests in "service hold" (its target stays "active")."""
    deadline = time.monotonic() + timeout
    node: dict = {}
    while time.monotonic() < deadline:
        node = api.get(f"/v1/nodes/{name}").json
        if node["provision_state"] == "service hold" and not node["reservation"]:
            return node
        time.sleep(0.05)
    raise AssertionError(f"node {name} did not reach service hold: {node.get('provision_state')}")


def _put(api, name: str, body: dict, status: int = 202, version: str | None = None):
    headers = {"X-OpenStack-Ironic-API-Version": version} if version else {}
    return api.put_json(PROVISION.format(name), body, headers=headers, status=status)


def test_service_with_a_hold_then_unhold(api):
    _active(api, "sv")
    resp = _put(api, "sv", {"target": "service", "service_steps": [HOLD]}, status=406, version="1.86")
    assert "1.87" in error_of(resp)
    resp = _put(api, "sv", {"target": "service"}, status=400)
    assert '"service_steps" (or "runbook") is required' in error_of(resp)
    resp = _put(api, "sv", {"target": "service", "service_steps": [{"interface": "deploy"}]}, status=400)
    assert "service_steps[0] must be an object" in error_of(resp)
    resp = _put(api, "sv", {"target": "active", "service_steps": [HOLD]}, status=400)
    assert '"service_steps" is only valid' in error_of(resp)
    resp = _put(
        api, "sv", {"target": "service", "service_steps": [{"interface": "deploy", "step": "x"}]}, status=400
    )
    assert "deploy.x is not a known service step" in error_of(resp)
    resp = _put(
        api, "sv", {"target": "service", "service_steps": [{"interface": "bios", "step": "x"}]}, status=400
    )
    assert "service_steps[0] bios.x is not offered by bios_interface no-bios; its steps: none" in error_of(
        resp
    )
    assert api.get("/v1/nodes/sv").json["provision_state"] == "active"

    _put(api, "sv", {"target": "service", "service_steps": [HOLD, POWER_OFF]})
    node = _wait_hold(api, "sv")
    assert node["provision_state"] == "service hold"
    assert node["target_provision_state"] == "active"
    assert node["service_step"]["step"] == "hold"
    assert (
        "service_step" not in api.get("/v1/nodes/sv", headers={"X-OpenStack-Ironic-API-Version": "1.86"}).json
    )
    resp = _put(api, "sv", {"target": "unhold"}, status=406, version="1.84")
    assert "1.85" in error_of(resp)
    _put(api, "sv", {"target": "unhold"})
    node = wait_for_state(api, "sv", "active")
    assert node["power_state"] == "power off"
    assert node["service_step"] == {}
    resp = _put(api, "sv", {"target": "unhold"}, status=400)
    assert '"active"' in error_of(resp)


def test_abort_from_service_hold_back_to_active(api):
    _active(api, "sa")
    _put(api, "sa", {"target": "service", "service_steps": [HOLD]})
    _wait_hold(api, "sa")
    _put(api, "sa", {"target": "abort"})
    node = wait_for_state(api, "sa", "active")
    assert "aborted by request in state service hold" in node["last_error"]


def test_runbook_services_an_active_node(api):
    _active(api, "rbs")
    api.post_json(
        "/v1/runbooks", {"name": "CUSTOM_HOLD", "steps": [{**HOLD, "args": {}, "order": 1}]}, status=201
    )
    api.put_json("/v1/nodes/rbs/traits", {"traits": ["CUSTOM_HOLD"]}, status=204)
    both = {"target": "service", "runbook": "CUSTOM_HOLD", "service_steps": [HOLD]}
    assert "not both" in error_of(_put(api, "rbs", both, status=400))
    _put(api, "rbs", {"target": "service", "runbook": "CUSTOM_HOLD"})
    _wait_hold(api, "rbs")
    _put(api, "rbs", {"target": "unhold"})
    assert wait_for_state(api, "rbs", "active")["last_error"] is None


def test_rescue_verbs_are_validated(api):
    _active(api, "rs")
    resp = _put(api, "rs", {"target": "rescue"}, status=400)
    assert '"rescue_password" is required' in error_of(resp)
    resp = _put(api, "rs", {"target": "rescue", "rescue_password": "pw"}, status=406, version="1.37")
    assert "1.38" in error_of(resp)
    resp = _put(api, "rs", {"target": "active", "rescue_password": "pw"}, status=400)
    assert '"rescue_password" is only valid with target "rescue"' in error_of(resp)
    # fake-hardware's fake deploy interface cannot boot the agent: refused, naming why.
    resp = _put(api, "rs", {"target": "rescue", "rescue_password": "pw"}, status=400)
    assert "cannot boot the agent ramdisk" in error_of(resp)
    resp = _put(api, "rs", {"target": "unrescue"}, status=400)
    assert '"unrescue"' in error_of(resp) and '"active"' in error_of(resp)
    assert api.get("/v1/nodes/rs").json["provision_state"] == "active"


def test_rescue_password_hash_is_masked_and_kept_by_patches(api):
    node = _active(api, "rm")
    hashed = "$5$abcdefgh$" + "A" * 43
    db_api.update_node(
        node["uuid"], {"instance_info": {"hashed_rescue_password": hashed, "image_source": "u"}}
    )
    shown = api.get("/v1/nodes/rm").json["instance_info"]
    assert shown == {"hashed_rescue_password": "******", "image_source": "u"}
    api.patch_json("/v1/nodes/rm", [{"op": "add", "path": "/instance_info/root_gb", "value": 10}])
    assert db_api.get_node(node["uuid"]).instance_info == {
        "hashed_rescue_password": hashed,
        "image_source": "u",
        "root_gb": 10,
    }
