"""store_inventory's fast path: an unreserved node updated without loading it."""

from __future__ import annotations

import json

import pytest

from agent.common import exception
from agent.db import api
from agent.db import inventory as db_inventory

INVENTORY = {"cpu": {"count": 8, "flags": ["b", "a"]}, "name": "é", "size": 1.5, "none": None}


def _store(node_id: int, **kwargs):
    args = {"changes": None, "values": {"properties": {"cpus": 8}}}
    args.update(kwargs)
    return db_inventory.store_inventory(node_id, INVENTORY, holding_lock=False, **args)


def _raw(sql: str, **params):
    with api.get_engine().connect() as conn:
        return conn.exec_driver_sql(sql, tuple(params.values()) if params else ()).all()


def test_a_reserved_node_is_refused_and_nothing_written(db):
    node = api.create_node({"driver": "fake-hardware", "properties": {"cpus": 1}})
    api.set_node_traits(node.uuid, ["CUSTOM_OLD"])
    api.reserve_node("conductor-b", node.uuid)
    before = api.get_node(node.uuid).updated_at
    with pytest.raises(exception.NodeLocked) as err:
        _store(node.id, traits=["CUSTOM_NEW"], new_ports=[{"address": "52:54:00:00:00:07"}])
    assert "conductor-b" in str(err.value) and node.uuid in str(err.value)
    stored = api.get_node(node.uuid)
    assert stored.properties == {"cpus": 1}
    assert stored.traits == ["CUSTOM_OLD"]
    assert stored.updated_at == before
    assert db_inventory.get_node_inventory(node.id) is None
    assert db_inventory.list_inventory_history(node.id) == []
    assert api.list_ports(node_id=node.id) == []


def test_a_missing_node_is_not_found(db):
    with pytest.raises(exception.NodeNotFound):
        _store(424242)
    assert _raw("select count(*) from node_inventory_history") == [(0,)]


def test_values_updated_at_and_traits_are_set_and_the_node_not_returned(db):
    node = api.create_node({"driver": "fake-hardware", "driver_internal_info": {"a": 1}})
    api.set_node_traits(node.uuid, ["CUSTOM_KEEP", "CUSTOM_GONE"])
    before = api.get_node(node.uuid).updated_at
    result = _store(
        node.id,
        values={"properties": {"cpus": 8}, "driver_internal_info": {"b": 2}, "description": "d"},
        traits=["CUSTOM_NEW", "CUSTOM_KEEP"],
    )
    assert result == {
        "node": None,
        "traits": ["CUSTOM_KEEP", "CUSTOM_NEW"],
        "ports": None,
        "created": [],
        "skipped": [],
    }
    stored = api.get_node(node.uuid)
    assert (stored.properties, stored.driver_internal_info, stored.description) == (
        {"cpus": 8},
        {"b": 2},
        "d",
    )
    assert stored.traits == ["CUSTOM_KEEP", "CUSTOM_NEW"]
    assert stored.updated_at is not None and (before is None or stored.updated_at > before)
    # JSON columns are written as the column writes them; updated_at moves as a flush moves it.
    assert _raw("select properties, driver_internal_info from nodes") == [('{"cpus": 8}', '{"b": 2}')]
    again = _store(node.id, traits=[])
    assert again["traits"] == [] and api.get_node(node.uuid).traits == []
    assert api.get_node(node.uuid).updated_at >= stored.updated_at


def test_unchanged_traits_are_read_as_they_are_now(db):
    node = api.create_node({"driver": "fake-hardware"})
    api.set_node_traits(node.uuid, ["CUSTOM_B", "CUSTOM_A"])
    assert _store(node.id, traits=None)["traits"] == ["CUSTOM_A", "CUSTOM_B"]
    assert api.get_node(node.uuid).traits == ["CUSTOM_A", "CUSTOM_B"]


@pytest.mark.parametrize("text", [None, json.dumps(INVENTORY, sort_keys=True, separators=(",", ":"))])
def test_the_stored_inventory_reads_back_equal(db, text):
    node = api.create_node({"driver": "fake-hardware"})
    for changes in (None, {"changed": {"cpu": 1}}):  # the first report inserts, the second updates
        _store(node.id, changes=changes, inventory_text=text)
    assert db_inventory.get_node_inventory(node.id) == INVENTORY
    history = db_inventory.list_inventory_history(node.id)
    assert [h["inventory"] for h in history] == [INVENTORY, INVENTORY]
    assert [h["changes"] for h in history] == [{"changed": {"cpu": 1}}, None]
    # changes=None is stored as the ORM path stores it (JSON null), the text as given.
    assert [r[0] for r in _raw("select changes from node_inventory_history order by id")] == [
        "null",
        '{"changed": {"cpu": 1}}',
    ]
    if text is not None:
        assert _raw("select inventory from node_inventory") == [(text,)]


def test_ports_and_links_as_the_locked_path(db):
    node = api.create_node({"driver": "fake-hardware"})
    other = api.create_node({"driver": "fake-hardware"})
    api.create_port({"address": "52:54:00:00:00:01", "node_id": node.id, "local_link_connection": {"x": 1}})
    api.create_port({"address": "52:54:00:00:00:09", "node_id": other.id})
    result = _store(
        node.id,
        new_ports=[
            {"address": "52:54:00:00:00:02", "pxe_enabled": False},
            {"address": "52:54:00:00:00:09"},
            {"address": "52-54-00-00-00-01"},
        ],
        port_links={"52:54:00:00:00:01": {"port_id": "Ethernet1/1"}, "52:54:00:00:00:02": {"port_id": "E2"}},
    )
    assert result["created"] == ["52:54:00:00:00:02"]
    assert result["skipped"] == [("52:54:00:00:00:09", other.id)]
    assert api.get_port_by_address("52:54:00:00:00:01").local_link_connection == {
        "x": 1,
        "port_id": "Ethernet1/1",
    }
    new = api.get_port_by_address("52:54:00:00:00:02")
    assert (new.node_id, new.pxe_enabled, new.local_link_connection) == (node.id, False, {"port_id": "E2"})
    assert api.get_port_by_address("52:54:00:00:00:09").node_id == other.id


def test_a_new_name_takes_the_locked_path(db):
    api.create_node({"driver": "fake-hardware", "name": "taken"})
    node = api.create_node({"driver": "fake-hardware"})
    with pytest.raises(exception.DuplicateName):
        _store(node.id, values={"name": "taken"})
    assert db_inventory.get_node_inventory(node.id) is None
    assert _store(node.id, values={"name": "free"})["node"].name == "free"
