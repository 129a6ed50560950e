from tests.unit.api.conftest import wait_for_state


def test_lifecycle(api):
    resp = api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "n1"})
    assert resp.status_int == 201
    assert resp.json["provision_state"] == "enroll"
    r = api.put_json("/v1/nodes/n1/states/provision", {"target": "manage"})
    assert r.status_int == 202
    wait_for_state(api, "n1", "manageable")
    api.put_json("/v1/nodes/n1/states/provision", {"target": "provide"})
    wait_for_state(api, "n1", "available")
    api.put_json("/v1/nodes/n1/states/provision", {"target": "active"})
    node = wait_for_state(api, "n1", "active")
    assert node["power_state"] == "power on"
