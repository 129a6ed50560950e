"""Diffing two inventories into added / removed / changed devices."""

from __future__ import annotations

import copy

from agent.node.changes import diff_inventory, has_changes, summary


def test_identical_inventories_have_no_change(inventory):
    diff = diff_inventory(inventory, copy.deepcopy(inventory))
    assert diff == {"added": {}, "removed": {}, "changed": {}}
    assert not has_changes(diff)
    assert summary(diff) == "no change"


def test_nic_carrier_and_speed_change(inventory):
    new = copy.deepcopy(inventory)
    new["nics"][1]["carrier"] = False
    new["nics"][1]["speed_mbps"] = None
    diff = diff_inventory(inventory, new)
    assert diff["changed"] == {
        "nics": {
            "eth1": {
                "carrier": {"old": True, "new": False},
                "speed_mbps": {"old": 25000, "new": None},
            }
        }
    }
    assert diff["added"] == {} and diff["removed"] == {}


def test_gpu_link_width_change_is_a_dotted_field(inventory):
    new = copy.deepcopy(inventory)
    new["gpus"][0]["pcie"]["current_width"] = 8
    diff = diff_inventory(inventory, new)
    assert diff["changed"] == {"gpus": {"0000:18:00.0": {"pcie.current_width": {"old": 16, "new": 8}}}}
    assert summary(diff) == "changed gpus: 0000:18:00.0"


def test_disk_added_and_gpu_removed(inventory):
    new = copy.deepcopy(inventory)
    new["disks"].append({"kernel_name": "nvme1n1", "name": "/dev/nvme1n1", "size": 1000})
    gone = new["gpus"].pop()
    diff = diff_inventory(inventory, new)
    assert diff["added"] == {"disks": [{"kernel_name": "nvme1n1", "name": "/dev/nvme1n1", "size": 1000}]}
    assert diff["removed"] == {"gpus": [gone]}
    assert diff["changed"] == {}
    assert summary(diff) == "added disks: nvme1n1; removed gpus: 0000:18:00.0"


def test_ip_address_moves_are_not_hardware_changes(inventory):
    new = copy.deepcopy(inventory)
    new["nics"][0]["ipv4_addresses"] = ["10.0.0.99"]
    assert not has_changes(diff_inventory(inventory, new))


def test_garbled_inputs_do_not_raise(inventory):
    garbled = {"nics": "not a list", "disks": [None, 3, {"no": "name"}], "gpus": None}
    diff = diff_inventory(garbled, inventory)
    assert [n["name"] for n in diff["added"]["nics"]] == ["docker0", "eth0", "eth1", "eth1v0"]
    assert diff_inventory(None, {})["added"] == {}
    assert diff_inventory(inventory, garbled)["removed"]["gpus"][0]["pci_address"] == "0000:18:00.0"
