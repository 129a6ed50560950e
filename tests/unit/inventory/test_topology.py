"""NUMA topology in ironic-python-agent's shape, and KFD GPU links."""

from __future__ import annotations

import os

import pytest

from agent.inventory import topology
from agent.inventory.base import Root, parse_cpulist
from tests.unit.inventory.treebuild import Tree

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")


def _cpu(nodes):
    return {"numa_nodes": nodes}


def test_numa_topology_shape(tmp_path):
    tree = Tree(tmp_path)
    # 2 nodes x 2 cores x 2 threads, Intel numbering: cpu n and n+4 are siblings
    for cpu, core in {0: 0, 1: 1, 2: 0, 3: 1, 4: 0, 5: 1, 6: 0, 7: 1}.items():
        tree.write(f"/sys/devices/system/cpu/cpu{cpu}/topology/core_id", str(core))
    cpu = _cpu(
        [
            {"node": 1, "cpus": [2, 3, 6, 7], "memory_bytes": 2048 * 1024},
            {"node": 0, "cpus": [0, 1, 4, 5], "memory_bytes": 1024 * 1024},
        ]
    )
    nics = [
        {"name": "eth1", "numa_node": None, "pci_address": "0000:00:03.0"},
        {"name": "enp25s0np0", "numa_node": 0, "pci_address": "0000:19:00.0"},
        {"name": "bond0", "numa_node": None, "pci_address": None},
    ]
    gpus = [{"pci_address": "0000:18:00.0", "numa_node": 0, "name": "H100 SXM5 80GB"}]

    topo = topology.numa_topology(Root(str(tmp_path)), cpu, nics, gpus)

    assert topo["ram"] == [{"numa_node": 0, "size_kb": 1024}, {"numa_node": 1, "size_kb": 2048}]
    assert topo["cpus"] == [
        {"cpu": 0, "numa_node": 0, "thread_siblings": [0, 4]},
        {"cpu": 1, "numa_node": 0, "thread_siblings": [1, 5]},
        {"cpu": 0, "numa_node": 1, "thread_siblings": [2, 6]},
        {"cpu": 1, "numa_node": 1, "thread_siblings": [3, 7]},
    ]
    assert topo["nics"] == [{"name": "enp25s0np0", "numa_node": 0}, {"name": "eth1", "numa_node": -1}]
    assert topo["gpus"] == [{"pci_address": "0000:18:00.0", "numa_node": 0, "name": "H100 SXM5 80GB"}]


def test_missing_core_id_is_recorded_and_skipped(tmp_path):
    tree = Tree(tmp_path)
    tree.write("/sys/devices/system/cpu/cpu0/topology/core_id", "0")
    tree.write("/sys/devices/system/cpu/cpu1/topology/core_id", "x")
    root = Root(str(tmp_path))

    topo = topology.numa_topology(root, _cpu([{"node": 0, "cpus": [0, 1], "memory_bytes": None}]), [], [])

    assert topo["cpus"] == [{"cpu": 0, "numa_node": 0, "thread_siblings": [0]}]
    assert topo["ram"] == []
    assert [e.path for e in root.errors] == ["/sys/devices/system/cpu/cpu1/topology/core_id"]


def test_kfd_links(tmp_path):
    tree = Tree(tmp_path)
    base = "/sys/class/kfd/kfd/topology/nodes"
    tree.write(
        f"{base}/2/io_links/0/properties", "type 2\nversion_major 0\nnode_from 2\nnode_to 0\nweight 20\n"
    )
    tree.write(f"{base}/2/io_links/1/properties", "type 11\nnode_from 2\nnode_to 3\nweight 15\n")
    tree.write(f"{base}/3/io_links/0/properties", "type 11\nnode_from 3\nnode_to 2\nweight 15\n")
    tree.write(f"{base}/3/io_links/1/properties", "garbage\n")

    assert topology.kfd_links(Root(str(tmp_path))) == [
        {"from": 2, "to": 0, "type": "PCIe", "weight": 20},
        {"from": 2, "to": 3, "type": "XGMI", "weight": 15},
        {"from": 3, "to": 2, "type": "XGMI", "weight": 15},
    ]


def test_mi300x_fixture_kfd_links():
    path = os.path.join(FIXTURES, "mi300x")
    if not os.path.isdir(os.path.join(path, "sys")):
        pytest.skip("fixture tree mi300x not built yet")
    links = topology.kfd_links(Root(path))
    xgmi = [link for link in links if link["type"] == "XGMI"]
    assert len(xgmi) == 8 * 7
    assert {(link["from"], link["to"]) for link in xgmi} == {
        (a, b) for a in range(2, 10) for b in range(2, 10) if a != b
    }
    assert len([link for link in links if link["type"] == "PCIe"]) == 8 + 8


def test_hgx_h100_fixture_numa_topology():
    path = os.path.join(FIXTURES, "hgx-h100")
    if not os.path.isdir(os.path.join(path, "sys")):
        pytest.skip("fixture tree hgx-h100 not built yet")
    root = Root(path)
    cpu = _cpu(
        [
            {"node": 0, "cpus": parse_cpulist("0-55,112-167"), "memory_bytes": 1056189812 * 1024},
            {"node": 1, "cpus": parse_cpulist("56-111,168-223"), "memory_bytes": 1056643152 * 1024},
        ]
    )

    topo = topology.numa_topology(root, cpu, [], [])

    assert topo["ram"] == [{"numa_node": 0, "size_kb": 1056189812}, {"numa_node": 1, "size_kb": 1056643152}]
    assert len(topo["cpus"]) == 112
    assert all(
        c["thread_siblings"] == [c["thread_siblings"][0], c["thread_siblings"][0] + 112] for c in topo["cpus"]
    )
    assert {c["numa_node"] for c in topo["cpus"] if 0 in c["thread_siblings"]} == {0}
    assert root.errors == []
