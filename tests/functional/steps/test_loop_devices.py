"""Steps on real block devices: loop devices, BLKDISCARD, mounts, the kernel's view of the disk."""

from __future__ import annotations

import os
import subprocess

import pytest

from agent.node.steps import configdrive, devices, erase, images
from agent.node.steps.errors import StepError
from tests.unit.node.steps.helpers import MIB, digest, make_raw_image, read_range, signatures, table

SIZE = 32 * MIB


def test_block_device_size(loop_disk):
    path, _ = loop_disk
    assert devices.is_block(path)
    assert devices.size_of(path) == 256 * MIB
    assert devices.sector_size(path) == 512


def test_raw_and_qcow2_images_on_a_loop_device(loop_ctx, loop_disk, server, images_dir):
    path, _ = loop_disk
    raw = make_raw_image(str(images_dir / "disk.raw"), SIZE)
    out = images.write_image(
        loop_ctx, {"image_source": server.url("disk.raw"), "image_checksum": digest(raw)}
    )
    assert out["target"] == path
    assert out["bytes"] == SIZE
    assert read_range(path, 1024, SIZE - MIB) == read_range(raw, 1024, SIZE - MIB)
    assert table(path)["lastlba"] == 256 * MIB // 512 - 34  # backup GPT moved to the device's end
    erase.erase_devices_metadata(loop_ctx, {})
    assert table(path) is None
    qcow = str(images_dir / "disk.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow], check=True)
    out = images.write_image(
        loop_ctx,
        {"image_source": server.url("disk.qcow2"), "image_checksum": "sha512:" + digest(qcow, "sha512"),
         "image_disk_format": "qcow2"},
    )  # fmt: skip
    assert out["checksum"] == "sha512:" + digest(qcow, "sha512")
    assert read_range(path, 1024, SIZE - MIB) == read_range(raw, 1024, SIZE - MIB)  # written with -t none


def test_bad_checksum_wipes_the_loop_device(loop_ctx, loop_disk, server, images_dir):
    path, _ = loop_disk
    raw = make_raw_image(str(images_dir / "disk.raw"), SIZE)
    with pytest.raises(StepError, match=f"got sha256:{digest(raw)}"):
        images.write_image(loop_ctx, {"image_source": server.url("disk.raw"), "image_checksum": "f" * 64})
    assert table(path) is None
    assert read_range(path, 0, MIB) == bytes(MIB)
    assert read_range(path, 256 * MIB - MIB, MIB) == bytes(MIB)


def test_configdrive_on_a_loop_device(loop_ctx, loop_disk, tmp_path):
    path, _ = loop_disk
    subprocess.run(["sgdisk", "-n", "1:2048:+64M", path], check=True, capture_output=True)
    out = configdrive.write_configdrive(loop_ctx, {"configdrive": {"meta_data": {"uuid": "loop"}}})
    parts = table(path)["partitions"]
    assert parts[-1]["name"] == "config-2"
    assert int(parts[-1]["start"]) * 512 == out["offset"]
    assert read_range(path, out["offset"] + 0x8001, 5) == b"CD001"


def test_full_erase_discards_and_verifies(loop_ctx, loop_disk):
    path, backing = loop_disk
    with open(path, "r+b") as f:
        for off in range(0, 256 * MIB, 16 * MIB):
            f.seek(off)
            f.write(os.urandom(65536))
        os.fsync(f.fileno())
    out = erase.erase_devices(loop_ctx, {})
    assert out["disks"]["/dev/sdx"]["verified"] is True
    assert out["disks"]["/dev/sdx"]["method"] in (
        "discard",
        "zero",
    )  # discard when the backing fs punches holes
    assert read_range(path, 0, 256 * MIB) == bytes(256 * MIB)


def test_mounted_disk_is_refused(loop_ctx, loop_disk, tmp_path):
    path, _ = loop_disk
    subprocess.run(["mkfs.ext4", "-q", "-F", path], check=True, capture_output=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", path, str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("mount is not permitted here")
    try:
        with pytest.raises(
            StepError, match=f"refusing to erase /dev/sdx \\({path}\\): {path} mounted at {mnt}"
        ):
            erase.erase_devices_metadata(loop_ctx, {})
        assert signatures(path)["TYPE"] == "ext4"  # untouched
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
