"""Inventory this machine's real root and compare it with lsblk, ip and psutil."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess

import psutil
import pytest

from agent.inventory.base import Root
from agent.inventory.cpu import read_cpu
from agent.inventory.disks import read_disks
from agent.inventory.memory import read_memory
from agent.inventory.netaddr import captured_addresses, live_addresses
from agent.inventory.nics import read_nics
from agent.inventory.system import read_system
from agent.inventory.udev import read_udev

NOT_DISKS = ("loop", "ram", "zram", "nbd", "dm-", "md", "sr", "fd")


def _json(*argv: str) -> object:
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed")
    return json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


@pytest.fixture(scope="module")
def disks() -> tuple[Root, dict]:
    root = Root("/")
    return root, {d["kernel_name"]: d for d in read_disks(root)}


@pytest.fixture(scope="module")
def lsblk() -> dict:
    devices = _json("lsblk", "-J", "-b", "-O")["blockdevices"]
    return {d["kname"]: d for d in devices if d["type"] == "disk" and not d["kname"].startswith(NOT_DISKS)}


def test_same_physical_disks_as_lsblk(disks, lsblk):
    assert sorted(disks[1]) == sorted(lsblk)


def test_disk_facts_match_lsblk(disks, lsblk):
    root, ours = disks
    for name, theirs in lsblk.items():
        disk = ours[name]
        assert disk["name"] == theirs["path"] == f"/dev/{name}"
        assert disk["size"] == int(theirs["size"]), name
        assert disk["rotational"] is bool(theirs["rota"]), name
        assert disk["logical_sector_size"] == int(theirs["log-sec"]), name
        assert disk["physical_sector_size"] == int(theirs["phy-sec"]), name
        assert disk["removable"] is bool(theirs["rm"]), name
        if theirs.get("hctl"):
            assert disk["hctl"] == theirs["hctl"], name
        if theirs.get("serial"):
            record = read_udev(root, "b" + theirs["maj:min"])
            scsi_serial = record["properties"].get("ID_SCSI_SERIAL") if record else None
            assert theirs["serial"] in (disk["serial"], scsi_serial), name
        if theirs.get("wwn"):
            assert theirs["wwn"] in (disk["wwn"], disk["wwn_with_extension"]), name
    assert not [p for p in root.errors if p.path.startswith("/sys/block")]


@pytest.fixture(scope="module")
def nics() -> tuple[Root, dict]:
    root = Root("/")
    return root, {n["name"]: n for n in read_nics(root)}


@pytest.fixture(scope="module")
def links() -> dict:
    return {
        link["ifname"]: link
        for link in _json("ip", "-j", "link")
        if os.path.exists(f"/sys/class/net/{link['ifname']}/device")
    }


def test_same_device_backed_interfaces_as_ip(nics, links):
    assert sorted(nics[1]) == sorted(links)


def test_interface_facts_match_ip(nics, links):
    root, ours = nics
    for name, link in links.items():
        nic = ours[name]
        assert nic["current_mac_address"] == link["address"], name
        assert nic["mac_address"] == link.get("permaddr", link["address"]), name
        assert nic["mtu"] == link["mtu"], name
        assert nic["operstate"] == link["operstate"].lower(), name
    assert not [p for p in root.errors if p.path.startswith("/sys/class/net")]


def test_addresses_match_ip(nics):
    addrs = {
        entry["ifname"]: entry.get("addr_info", [])
        for entry in _json("ip", "-j", "addr")
        if entry["ifname"] in nics[1]
    }
    for name, info in addrs.items():
        v4 = sorted(a["local"] for a in info if a["family"] == "inet")
        v6 = sorted(a["local"] for a in info if a["family"] == "inet6")
        assert sorted(nics[1][name]["ipv4_addresses"]) == v4, name
        assert sorted(nics[1][name]["ipv6_addresses"]) == v6, name


def test_captured_ipv6_matches_live():
    """/proc/net/if_inet6 (what a captured tree has) names the same IPv6 addresses as the kernel."""
    live = {name: sorted(v6) for name, (_, v6) in live_addresses().items() if v6}
    captured = {name: sorted(v6) for name, (_, v6) in captured_addresses(Root("/")).items() if v6}
    assert captured == live


def test_cpu_and_memory_match_psutil():
    root = Root("/")
    cpu = read_cpu(root)
    assert cpu["count"] == psutil.cpu_count(logical=True)
    if psutil.cpu_count(logical=False):
        assert cpu["cores"] == psutil.cpu_count(logical=False)
    assert cpu["architecture"] == os.uname().machine
    assert cpu["sockets"] >= 1 and cpu["threads_per_core"] >= 1
    assert sum(len(n["cpus"]) for n in cpu["numa_nodes"]) >= cpu["count"]
    assert read_memory(root)["total_bytes"] == psutil.virtual_memory().total


def test_system_matches_the_kernel():
    root = Root("/")
    info = read_system(root)
    assert info["hostname"] == socket.gethostname()
    with open("/proc/cmdline") as f:
        assert info["kernel_cmdline"] == f.read().strip()
    assert info["boot_mode"] == ("uefi" if os.path.isdir("/sys/firmware/efi") else "bios")
