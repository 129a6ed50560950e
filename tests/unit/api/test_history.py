"""Node history (1.78) and health (1.109) through the API, with events the conductor records."""

from __future__ import annotations

from agent.common import states
from agent.conductor import task_manager
from agent.db import api as db_api
from tests.unit.api.conftest import error_of

V77 = {"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "1.77"}
V108 = {"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "1.108"}
V114 = {"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "1.114"}


def _node(api, name: str) -> dict:
    return api.post_json("/v1/nodes", {"name": name, "driver": "fake-hardware"}).json


def test_a_new_last_error_is_recorded_as_an_error_event_once(api):
    node = _node(api, "h1")
    db_api.update_node(node["uuid"], {"provision_state": states.CLEANWAIT})
    with task_manager.acquire({"user_id": "u-42", "project_id": "p-7"}, node["uuid"], purpose="t") as task:
        task.update_node({"last_error": "Cleaning failed: step erase_devices timed out"})
        task.update_node({"last_error": "Cleaning failed: step erase_devices timed out"})  # same: not again
        task.update_node({"last_error": None})
    history = api.get("/v1/nodes/h1/history").json["history"]
    assert len(history) == 1
    event = history[0]
    assert event["severity"] == "ERROR" and event["event"] == "Cleaning failed: step erase_devices timed out"
    assert set(event) == {"uuid", "created_at", "severity", "event", "links"}
    assert event["links"][0]["href"].endswith(f"/v1/nodes/{node['uuid']}/history/{event['uuid']}")
    detail = api.get("/v1/nodes/h1/history?detail=True").json["history"][0]
    assert (detail["event_type"], detail["user"], detail["conductor"]) == (
        "cleaning",
        "u-42",
        "test-conductor",
    )
    # 1.115: the state the node was in (and its target), how long it had been there, the project
    assert (detail["state"], detail["target_provision_state"], detail["project"]) == (
        "clean wait",
        None,
        "p-7",
    )
    assert isinstance(detail["duration_seconds"], int) and 0 <= detail["duration_seconds"] < 60
    one = api.get(f"/v1/nodes/h1/history/{event['uuid']}").json
    assert one["event_type"] == "cleaning" and one["uuid"] == event["uuid"] and one["state"] == "clean wait"
    older = api.get(f"/v1/nodes/h1/history/{event['uuid']}", extra_environ=V114).json
    assert "state" not in older and "duration_seconds" not in older and older["user"] == "u-42"
    older = api.get("/v1/nodes/h1/history?detail=True", extra_environ=V114).json["history"][0]
    assert "project" not in older and older["event_type"] == "cleaning"


def test_history_is_gated_at_1_78_and_unknown_events_are_404(api):
    _node(api, "h2")
    api.get("/v1/nodes/h2/history", extra_environ=V77, status=404)
    resp = api.get("/v1/nodes/h2/history/6f3c0e8e-1111-4222-8333-944455556666", status=404)
    assert "6f3c0e8e-1111-4222-8333-944455556666" in error_of(resp)
    assert "maybe" in error_of(api.get("/v1/nodes/h2/history?detail=maybe", status=400))


def test_health_is_shown_from_1_109(api):
    node = _node(api, "h3")
    db_api.update_node(node["uuid"], {"health": "Warning"})
    assert api.get("/v1/nodes/h3").json["health"] == "Warning"
    assert "health" not in api.get("/v1/nodes/h3", extra_environ=V108).json
    api.get("/v1/nodes/h3?fields=health", extra_environ=V108, status=406)
    assert api.get("/v1/nodes/h3?fields=uuid,health").json["health"] == "Warning"
