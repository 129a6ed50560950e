"""write_configdrive onto stand-in disks; the partition is read back with xorriso / mtools."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess

import pytest

from agent.node.steps import configdrive
from agent.node.steps.errors import StepError
from tests.unit.node.steps.helpers import MIB, make_gpt, read_range, table

CONTENTS = {
    "meta_data": {
        "uuid": "0b1e0d3c-7c2f-4a43-9a7e-3f6a6d0e2c11",
        "hostname": "gpu-node-17",
        "public_keys": {"k": "ssh-ed25519 AAAA"},
    },
    "network_data": {
        "links": [
            {"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:AA:BB:01", "mtu": 9000},
            {"id": "eth1", "type": "phy", "ethernet_mac_address": "52:54:00:aa:bb:02", "mtu": 9000},
            {"id": "bond0", "type": "bond", "bond_links": ["eth0", "eth1"], "bond_mode": "802.3ad"},
            {"id": "vlan42", "type": "vlan", "vlan_link": "bond0", "vlan_id": 42},
        ],
        "networks": [
            {
                "id": "net0",
                "type": "ipv4",
                "link": "vlan42",
                "ip_address": "10.42.0.17",
                "netmask": "255.255.255.0",
                "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.42.0.1"}],
            },
        ],
        "services": [{"type": "dns", "address": "10.42.0.2"}],
    },
    "user_data": "#cloud-config\nhostname: gpu-node-17\n",
}


def partition_bytes(disk: str, part: dict, sector: int = 512) -> bytes:
    return read_range(disk, int(part["start"]) * sector, int(part["size"]) * sector)


def extract_iso(data: bytes, tmp_path) -> str:
    iso = tmp_path / "cd.iso"
    iso.write_bytes(data)
    out = tmp_path / "cd"
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(out)],
        check=True,
        capture_output=True,
    )
    return str(out)


def gpt_disk(path: str) -> None:
    make_gpt(path, 'start=2048, size=100M, name="root"')


def test_iso_configdrive_on_gpt(ctx, disks, tmp_path):
    gpt_disk(disks["/dev/vda"])
    out = configdrive.write_configdrive(ctx, {"configdrive": CONTENTS, "root_device": "/dev/vda"})
    assert out["partition_table"] == "gpt"
    assert out["filesystem"] == "iso9660"
    t = table(disks["/dev/vda"])
    assert [p["name"] for p in t["partitions"]] == ["root", "config-2"]
    last = t["partitions"][-1]
    assert int(last["start"]) + int(last["size"]) - 1 == t["lastlba"]  # at the end of the disk
    assert int(last["start"]) * 512 == out["offset"]
    data = partition_bytes(disks["/dev/vda"], last)
    assert data[0x8001:0x8006] == b"CD001"
    assert data[0x8028:0x8030] == b"config-2"  # the volume label cloud-init looks for
    root = extract_iso(data, tmp_path)
    latest = os.path.join(root, "openstack", "latest")
    assert sorted(os.listdir(latest)) == ["meta_data.json", "network_data.json", "user_data"]
    with open(os.path.join(latest, "meta_data.json")) as f:
        assert json.load(f)["hostname"] == "gpu-node-17"
    with open(os.path.join(latest, "network_data.json")) as f:
        net = json.load(f)
    assert net["links"][0]["ethernet_mac_address"] == "52:54:00:aa:bb:01"
    assert (
        net["links"][2]["ethernet_mac_address"] == "52:54:00:aa:bb:01"
    )  # a bond takes its first member's MAC
    assert net["links"][3]["vlan_id"] == 42
    assert net["networks"][0]["routes"][0]["gateway"] == "10.42.0.1"
    assert net["services"] == [{"type": "dns", "address": "10.42.0.2"}]
    with open(os.path.join(latest, "user_data")) as f:
        assert f.read() == "#cloud-config\nhostname: gpu-node-17\n"


def test_vfat_configdrive_on_mbr(ctx, disks):
    subprocess.run(
        ["sfdisk", "--quiet", disks["/dev/vdb"]],
        input="label: dos\nstart=2048, size=20480\n",
        text=True,
        check=True,
    )
    out = configdrive.write_configdrive(
        ctx, {"configdrive": CONTENTS, "root_device": "/dev/vdb", "configdrive_format": "vfat"}
    )
    assert out["partition_table"] == "dos"
    t = table(disks["/dev/vdb"])
    assert len(t["partitions"]) == 2
    last = t["partitions"][-1]
    assert last["type"] == "83"
    assert (int(last["start"]) + int(last["size"])) * 512 == 64 * MIB  # ends at the disk's last sector
    assert int(last["size"]) * 512 >= 16 * MIB  # short of 64 MiB of room: as big as the filesystem
    image = f"{disks['/dev/vdb']}@@{out['offset']}"
    label = subprocess.run(["mlabel", "-s", "-i", image, "::"], capture_output=True, text=True, check=True)
    assert "CONFIG-2" in label.stdout
    meta = subprocess.run(
        ["mtype", "-i", image, "::openstack/latest/meta_data.json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(meta.stdout)["uuid"] == "0b1e0d3c-7c2f-4a43-9a7e-3f6a6d0e2c11"


def test_given_gzip_base64_iso_written_as_is(ctx, disks, tmp_path):
    iso = configdrive.build_iso({"meta_data": {"uuid": "given"}}, str(tmp_path))
    encoded = base64.b64encode(gzip.compress(iso)).decode()
    gpt_disk(disks["/dev/vda"])
    out = configdrive.write_configdrive(ctx, {"configdrive": encoded})  # root device: the default rule
    assert out["root_device"] == "/dev/vda"
    assert out["filesystem"] == "given"
    assert out["bytes"] == len(iso)
    assert read_range(disks["/dev/vda"], out["offset"], len(iso)) == iso


def test_blank_disk_gets_an_mbr(ctx, disks):
    out = configdrive.write_configdrive(ctx, {"configdrive": {"meta_data": {}}, "root_device": "/dev/vdb"})
    assert out["partition_table"] == "dos"
    assert table(disks["/dev/vdb"])["partitions"][0]["type"] == "83"


def test_no_room_at_the_end(ctx, disks):
    make_gpt(disks["/dev/vdb"], "start=2048")
    with pytest.raises(StepError, match="no room for a 1 MiB config-2 partition at the end of"):
        configdrive.write_configdrive(ctx, {"configdrive": {"meta_data": {}}, "root_device": "/dev/vdb"})


@pytest.mark.parametrize(
    ("drive", "message"),
    [
        (None, "needs configdrive"),
        ("!!!not base64", "not valid base64"),
        (base64.b64encode(b"\x1f\x8bjunk").decode(), "not valid gzip"),
        (12, "must be a string or an object"),
        ({"meta_data": []}, "meta_data must be an object"),
        (
            {"network_data": {"links": [{"id": "eth0", "type": "phy"}]}},
            "a phy link needs ethernet_mac_address",
        ),
    ],
)
def test_bad_configdrive(ctx, disks, drive, message):
    with pytest.raises(StepError, match=message):
        configdrive.write_configdrive(ctx, {"configdrive": drive, "root_device": "/dev/vda"})
    assert table(disks["/dev/vda"]) is None  # nothing was written
