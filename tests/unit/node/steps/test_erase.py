"""erase_devices_metadata and erase_devices on stand-in disk files."""

from __future__ import annotations

import os
import struct
import subprocess

import pytest

from agent.node.steps import erase
from agent.node.steps.errors import StepError
from tests.unit.node.steps.helpers import MIB, make_gpt, read_range, signatures, table


def gpt_with_ext4(path: str) -> None:
    """A GPT with ext4 in partition 1 (at 1 MiB) and vfat in partition 2 (sector 43008)."""
    make_gpt(path, "start=2048, size=20M", "size=8M")
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-E", f"offset={MIB}", path, "20M"], check=True, capture_output=True
    )
    subprocess.run(
        ["mkfs.vfat", "--offset", str(43008), path, str(8 * 1024)], check=True, capture_output=True
    )


def test_metadata_erase_removes_tables_and_signatures(ctx, disks):
    vdb = disks["/dev/vdb"]
    gpt_with_ext4(vdb)
    assert signatures(vdb, MIB)["TYPE"] == "ext4"
    assert signatures(vdb, 43008 * 512)["TYPE"] == "vfat"
    assert table(vdb)["label"] == "gpt"
    out = erase.erase_devices_metadata(ctx, {"disks": ["/dev/vdb"]})
    removed = out["disks"]["/dev/vdb"]["removed"]
    assert any(r.endswith(":ext4") for r in removed)
    assert any(r.endswith(":vfat") for r in removed)
    assert "gpt" in removed
    assert table(vdb) is None
    assert signatures(vdb) == {}
    assert signatures(vdb, MIB) == {}
    assert signatures(vdb, 43008 * 512) == {}
    assert read_range(vdb, 64 * MIB - MIB, MIB) == bytes(MIB)  # backup GPT gone
    assert os.path.getsize(vdb) == 64 * MIB


def test_metadata_erase_defaults_to_mapped_disks(ctx, disks):
    for path in disks.values():
        make_gpt(path, "start=2048, size=4M")
    out = erase.erase_devices_metadata(ctx, {})
    assert sorted(out["disks"]) == ["/dev/vda", "/dev/vdb"]
    assert all(table(p) is None for p in disks.values())


def test_full_erase_zeroes_a_file(ctx, disks):
    vdb = disks["/dev/vdb"]
    with open(vdb, "r+b") as f:
        for off in range(0, 64 * MIB, 4 * MIB):
            f.seek(off)
            f.write(b"\xa5" * 65536)
    out = erase.erase_devices(ctx, {"disks": ["/dev/vdb"]})
    result = out["disks"]["/dev/vdb"]
    assert (result["method"], result["verified"]) == ("zero", True)
    samples = result["samples"]  # what the verification read back: first, last and random blocks
    assert samples["all_zero"] and samples["nonzero_offsets"] == [] and samples["block"] == 65536
    assert {0, 64 * MIB - 65536} <= set(samples["offsets"]) and len(samples["offsets"]) >= 3
    assert read_range(vdb, 0, 64 * MIB) == bytes(64 * MIB)


def test_zero_samples_name_the_blocks_that_are_not_zero(tmp_path):
    path = tmp_path / "d.img"
    path.write_bytes(bytes(4 * MIB))
    with open(path, "r+b") as f:
        f.seek(4 * MIB - 10)
        f.write(b"x")
    check = erase.zero_samples(str(path), 2)
    assert not check["all_zero"] and check["nonzero_offsets"] == [4 * MIB - 65536]


def test_reads_zeros_detects_data(tmp_path):
    path = tmp_path / "d.img"
    path.write_bytes(bytes(MIB))
    assert erase.reads_zeros(str(path), 4)
    with open(path, "r+b") as f:
        f.seek(MIB - 10)
        f.write(b"x")  # inside the last block, which is always sampled
    assert not erase.reads_zeros(str(path), 4)


def gfs2_superblock(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset + 64 * 1024)
        f.write(struct.pack(">IIQII", 0x01161970, 1, 0, 100, 0) + struct.pack(">II", 1801, 1900))


def test_shared_filesystems_are_refused(ctx, disks):
    vdb = disks["/dev/vdb"]
    make_gpt(vdb, "start=2048, size=20M")
    gfs2_superblock(vdb, MIB)
    with pytest.raises(StepError, match=r"refusing to erase /dev/vdb .*holds a shared gfs2 filesystem"):
        erase.erase_devices_metadata(ctx, {"disks": ["/dev/vda", "/dev/vdb"]})
    assert table(vdb)["label"] == "gpt"  # nothing erased, on any disk


@pytest.mark.parametrize(
    ("offset", "magic", "fs"),
    [(2 * 4096, b"OCFSV2", "ocfs2"), (2 * MIB, b"\x5e\xf1\xab\x2f", "vmfs"), (MIB, b"\x0d\xd0\x01\xc0",
     "vmfs_volume_member")],
)  # fmt: skip
def test_other_shared_signatures(ctx, disks, offset, magic, fs):
    with open(disks["/dev/vdb"], "r+b") as f:
        f.seek(offset)
        f.write(magic)
    with pytest.raises(StepError, match=f"the disk holds a shared {fs} filesystem"):
        erase.erase_devices(ctx, {"disks": ["/dev/vdb"]})


def test_gpfs_partition_refused(ctx, disks):
    vdb = disks["/dev/vdb"]
    make_gpt(vdb, f"start=2048, size=8M, type={erase.GPFS_GPT_TYPE}")
    with pytest.raises(StepError, match="is a GPFS"):
        erase.erase_devices_metadata(ctx, {"disks": ["/dev/vdb"]})


def test_bad_disk_list(ctx):
    with pytest.raises(StepError, match="disks must be a list of disk names"):
        erase.erase_devices(ctx, {"disks": "/dev/vda"})
    with pytest.raises(StepError, match="disk /dev/sdq: /dev/sdq does not exist"):
        erase.erase_devices(ctx, {"disks": ["/dev/sdq"]})
