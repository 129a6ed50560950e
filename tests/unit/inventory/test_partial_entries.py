"""A device whose sysfs entry is partial stays in the inventory, with nulls and an error naming the path.

Cases: copies of the fixture trees (the captured host-kvm, the constructed hgx-h100) with one
file or link taken away, as seen on real hosts: an NVMe namespace without its ``device`` link, a
NIC without its ``address`` file, a NIC or virtio disk without its ``device`` link.
"""

from __future__ import annotations

import os

import pytest

from agent.inventory.base import Root
from agent.inventory.collect import collect
from agent.inventory.disks import read_disks
from agent.inventory.nics import read_nics
from agent.inventory.schema import validate_inventory
from tests.fixtures.builder import devices
from tests.fixtures.builder.tree import Tree as BuilderTree
from tests.unit.inventory.treebuild import FIXTURES, Tree
from tests.unit.node.conftest import clone_tree


def partial_tree(tmp_path, name: str, *remove: str) -> str:
    """A hard-linked copy of fixture tree ``name`` without the host paths ``remove``."""
    src = os.path.join(FIXTURES, name)
    if not os.path.isdir(os.path.join(src, "sys")):
        pytest.skip(f"fixture tree {name} is not there")
    dest = clone_tree(src, str(tmp_path / name))
    for rel in remove:
        path = os.path.join(dest, rel.lstrip("/"))
        assert os.path.lexists(path), f"{rel} is not in fixture tree {name}"
        os.unlink(path)
    return dest


def errors_for(inv_or_root, path: str) -> list[str]:
    """The errors about host path ``path``, as 'path: error' lines."""
    if isinstance(inv_or_root, Root):
        errors = [e.as_dict() for e in inv_or_root.errors]
    else:
        errors = inv_or_root["errors"]
    return [f"{e['path']}: {e['error']}" for e in errors if e["path"] == path]


def test_nvme_namespace_without_its_device_link_is_kept(tmp_path) -> None:
    path = partial_tree(
        tmp_path, "hgx-h100", "/sys/devices/pci0000:00/0000:00:06.0/0000:04:00.0/nvme/nvme0/nvme0n1/device"
    )
    whole_root = Root(os.path.join(FIXTURES, "hgx-h100"))
    whole = {d["kernel_name"]: d for d in read_disks(whole_root)}
    root = Root(path)
    disks = {d["kernel_name"]: d for d in read_disks(root)}
    assert sorted(disks) == sorted(whole)  # nvme0n1 is still there
    # Its controller is the directory its entry sits in: nothing is lost.
    assert disks["nvme0n1"] == whole["nvme0n1"]
    (error,) = errors_for(root, "/sys/block/nvme0n1/device")
    assert "missing" in error and "/nvme/nvme0" in error
    assert len(root.errors) == len(whole_root.errors) + 1  # that one error more, nothing else


def test_nic_without_its_address_file_is_kept_with_a_null_mac(tmp_path) -> None:
    nic_dir = "/sys/devices/pci0000:15/0000:15:01.0/0000:16:00.0/0000:17:01.0/0000:19:00.0/net/enp25s0np0"
    path = partial_tree(tmp_path, "hgx-h100", f"{nic_dir}/address")
    whole_root = Root(os.path.join(FIXTURES, "hgx-h100"))
    whole = {n["name"]: n for n in read_nics(whole_root)}
    root = Root(path)
    nics = {n["name"]: n for n in read_nics(root)}
    assert sorted(nics) == sorted(whole)
    nic = nics["enp25s0np0"]
    assert nic["mac_address"] is None and nic["current_mac_address"] is None
    assert nic["pci_address"] == whole["enp25s0np0"]["pci_address"] == "0000:19:00.0"
    assert nic["speed_mbps"] == whole["enp25s0np0"]["speed_mbps"]
    assert errors_for(root, "/sys/class/net/enp25s0np0/address") == [
        "/sys/class/net/enp25s0np0/address: missing"
    ]
    assert len(root.errors) == len(whole_root.errors) + 1  # that one error more, nothing else


def test_captured_vm_with_partial_nic_and_disk_keeps_both_in_the_inventory(tmp_path) -> None:
    """host-kvm, captured from a real guest: eth0 without address or device link, vda without device link."""
    path = partial_tree(
        tmp_path,
        "host-kvm",
        "/sys/devices/pci0000:00/0000:00:03.0/virtio2/net/eth0/address",
        "/sys/devices/pci0000:00/0000:00:03.0/virtio2/net/eth0/device",
        "/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda/device",
    )
    whole = collect(os.path.join(FIXTURES, "host-kvm"), use_nvml=False)
    inv = collect(path, use_nvml=False)
    nics = {n["name"]: n for n in inv["nics"]}
    assert set(nics) == {n["name"] for n in whole["nics"]} == {"eth0"}
    assert nics["eth0"]["mac_address"] is None
    assert nics["eth0"]["pci_address"] == "0000:00:03.0"  # virtio2's PCI function, found from the path
    assert nics["eth0"]["driver"] == {n["name"]: n for n in whole["nics"]}["eth0"]["driver"]
    disks = {d["kernel_name"]: d for d in inv["disks"]}
    assert set(disks) == {d["kernel_name"] for d in whole["disks"]} == {"vda"}
    assert disks["vda"]["size"] == {d["kernel_name"]: d for d in whole["disks"]}["vda"]["size"]
    assert disks["vda"]["transport"] == "virtio"
    for missing in (
        "/sys/class/net/eth0/address",
        "/sys/class/net/eth0/device",
        "/sys/block/vda/device",
    ):
        assert errors_for(inv, missing), (missing, inv["errors"])
    assert validate_inventory(inv) == []  # nulls where the schema allows them
    assert not [e for e in inv["errors"] if e["path"].startswith(("/sys/block/loop", "/sys/block/zram"))]


def test_software_devices_stay_out_without_errors(tmp_path) -> None:
    """No device link, an entry under /sys/devices/virtual: a loop device or a bridge, not a partial one."""
    tree = Tree(tmp_path)
    tree.files("/sys/devices/virtual/block/loop0", dev="7:0", size="0")
    tree.link("/sys/block/loop0", "/sys/devices/virtual/block/loop0")
    tree.files("/sys/devices/virtual/block/zd0", dev="230:0", size="8")
    tree.link("/sys/block/zd0", "/sys/devices/virtual/block/zd0")
    tree.files("/sys/devices/virtual/net/br0", address="02:00:00:00:00:01", mtu="1500")
    tree.link("/sys/class/net/br0", "/sys/devices/virtual/net/br0")
    root = Root(str(tmp_path))
    assert read_disks(root) == []
    assert read_nics(root) == []
    assert root.errors == []


def test_constructed_partial_entries_from_the_tree_builders(tmp_path) -> None:
    """The builders' partial cases: an NVMe namespace without ``device``, NICs without address or link."""
    t = BuilderTree(str(tmp_path / "root"))
    ctrl = "/sys/devices/pci0000:00/0000:00:06.0/0000:04:00.0/nvme/nvme0"
    t.attrs(
        ctrl, {"model": "SAMSUNG MZ1L2960HCJR-00A07", "serial": "S665NE0T100001", "firmware_rev": "GDC7302Q"}
    )
    devices.disk(t, ctrl, "nvme0n1", 259, 0, 2048, rotational=0, direct=True)  # no device link
    nic_pci = "/sys/devices/pci0000:15/0000:15:01.0/0000:19:00.0"
    t.attrs(nic_pci, {"vendor": "0x15b3", "device": "0x1021", "numa_node": 0})
    devices.nic(t, nic_pci, "enp25s0np0", 3, None, speed="400000", carrier=1, operstate="up")
    nic_pci_b = "/sys/devices/pci0000:15/0000:15:01.0/0000:19:00.1"
    t.attrs(nic_pci_b, {"vendor": "0x15b3", "device": "0x1021", "numa_node": 0})
    devices.nic(
        t,
        nic_pci_b,
        "enp25s0np1",
        4,
        "a0:88:c2:4e:3f:11",
        speed=None,
        carrier=0,
        operstate="down",
        partial=True,
    )
    devices.loopback(t)
    root = Root(t.root)
    (disk,) = read_disks(root)
    assert (disk["kernel_name"], disk["serial"], disk["pci_address"]) == (
        "nvme0n1",
        "S665NE0T100001",
        "0000:04:00.0",
    )
    assert disk["size"] == 2048 * 512
    nics = {n["name"]: n for n in read_nics(root)}
    assert set(nics) == {"enp25s0np0", "enp25s0np1"}
    assert nics["enp25s0np0"]["mac_address"] is None and nics["enp25s0np0"]["speed_mbps"] == 400000
    assert nics["enp25s0np1"]["mac_address"] == "a0:88:c2:4e:3f:11"
    assert nics["enp25s0np1"]["pci_address"] == "0000:19:00.1"
    assert sorted(e.path for e in root.errors) == [
        "/sys/block/nvme0n1/device",
        "/sys/class/net/enp25s0np0/address",
        "/sys/class/net/enp25s0np1/device",
    ]
