"""node_list.list_node_dicts gives exactly what node_to_dict makes of db_api.list_nodes's page."""

from __future__ import annotations

import datetime

import pytest

from agent.common import exception, row_dicts
from agent.db import api, node_list


@pytest.fixture
def nodes(db):
    made = []
    for i in range(7):
        node = api.create_node(
            {
                "driver": "fake-hardware",
                "name": f"n-{i}",
                "resource_class": "gpu" if i % 2 else None,
                "properties": {"cpus": i, "nested": {"list": [i, "x"]}},
                "extra": {"rack": f"r{i % 3}"},
                "maintenance": i == 3,
                "agent_token_hash": "secret-hash",
                "last_heartbeat_at": datetime.datetime(2030, 1, 1, i, tzinfo=datetime.UTC) if i % 3 else None,
            }
        )
        if i % 2:
            api.set_node_traits(node.uuid, [f"CUSTOM_T{i}", "CUSTOM_A"])
        made.append(node)
    return made


@pytest.mark.parametrize(
    "page",
    [
        {},
        {"limit": 3},
        {"sort_key": "resource_class", "sort_dir": "desc"},
        {"sort_key": "last_heartbeat_at", "sort_dir": "asc", "limit": 4},
        {"filters": {"maintenance": False}},
        {"filters": {"resource_class": "gpu"}, "sort_key": "name", "sort_dir": "desc"},
    ],
)
def test_dicts_match_the_orm_page(nodes, page):
    expected = [row_dicts.node_to_dict(n) for n in api.list_nodes(**page)]
    got = node_list.list_node_dicts(**page)
    assert got == expected
    assert got and all("agent_token_hash" not in n for n in got)


def test_marker_pages_match(nodes):
    marker = nodes[2].uuid
    for key in ("id", "name", "last_heartbeat_at"):
        expected = [row_dicts.node_to_dict(n) for n in api.list_nodes(marker=marker, sort_key=key, limit=3)]
        assert node_list.list_node_dicts(marker=marker, sort_key=key, limit=3) == expected


def test_traits_are_sorted_and_per_node(nodes):
    got = {n["name"]: n["traits"] for n in node_list.list_node_dicts()}
    assert got["n-1"] == ["CUSTOM_A", "CUSTOM_T1"]
    assert got["n-2"] == []


def test_bad_marker_and_filter_raise_as_list_nodes_does(nodes):
    with pytest.raises(exception.InvalidParameterValue, match="Marker node"):
        node_list.list_node_dicts(marker="4f0c8d8e-0000-4000-8000-000000000000")
    with pytest.raises(exception.InvalidParameterValue, match="Unknown node filter 'colour'"):
        node_list.list_node_dicts(filters={"colour": "red"})
