"""Retire and unretire (1.61): only in active, adopt failed or manageable; a retired node is never provided
and, cleaned on undeploy, ends in manageable instead of available."""

from __future__ import annotations

from tests.unit.api.conftest import error_of, wait_for_state


def _target(api, ident, target, **kw):
    return api.put_json(f"/v1/nodes/{ident}/states/provision", {"target": target}, **kw)


def _patch(api, ident, ops, **kw):
    return api.patch_json(f"/v1/nodes/{ident}", ops, **kw)


def test_retire_rules_and_retired_undeploy_ends_manageable(api):
    api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "old"})
    _target(api, "old", "manage")
    wait_for_state(api, "old", "manageable")
    _target(api, "old", "provide")
    wait_for_state(api, "old", "available")
    resp = _patch(api, "old", [{"op": "replace", "path": "/retired", "value": True}], status=409)
    assert "'retired' set in provision state 'available'" in error_of(resp)
    _target(api, "old", "active")
    wait_for_state(api, "old", "active")
    node = _patch(
        api,
        "old",
        [
            {"op": "replace", "path": "/retired", "value": True},
            {"op": "replace", "path": "/retired_reason", "value": "fans"},
        ],
    ).json
    assert (node["retired"], node["retired_reason"]) == (True, "fans")
    _target(api, "old", "deleted")
    node = wait_for_state(api, "old", "manageable")
    assert node["retired"] is True
    resp = _target(api, "old", "provide", status=409)
    assert "retired" in error_of(resp)
    node = _patch(api, "old", [{"op": "replace", "path": "/retired", "value": False}]).json
    assert (node["retired"], node["retired_reason"]) == (False, None)
    _target(api, "old", "provide")
    wait_for_state(api, "old", "available")
