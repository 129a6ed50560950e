"""The test OS image builder's pure parts: cache key, partition layout (checked by sfdisk), GRUB config."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from agent.image import builder

MIB = 1024 * 1024


def test_cache_key_follows_every_input(tmp_path, monkeypatch):
    first = builder.cache_key()
    assert first == builder.cache_key() and len(first) == 16
    files = tmp_path / "files"
    shutil.copytree(builder.FILES, files)
    monkeypatch.setattr(builder, "FILES", files)
    assert builder.cache_key() == first
    (files / "99-kiln.cfg").write_text((files / "99-kiln.cfg").read_text() + "# changed\n")
    changed = builder.cache_key()
    assert changed != first
    monkeypatch.setattr(builder, "PACKAGES", (*builder.PACKAGES, "openssh-server"))
    assert builder.cache_key() not in (first, changed)


def test_partition_script_gives_a_bootable_esp_then_root(tmp_path):
    esp, root = 32 * MIB, 700 * MIB
    disk = tmp_path / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(MIB + esp + root)
    subprocess.run(
        ["sfdisk", "--quiet", str(disk)], input=builder.partition_script(esp, root), text=True, check=True
    )
    table = json.loads(
        subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True, check=True).stdout
    )
    table = table["partitiontable"]
    assert table["label"] == "dos"
    first, second = table["partitions"]
    assert (first["start"], first["size"], first["type"], first.get("bootable")) == (
        2048,
        esp // 512,
        "ef",
        True,
    )
    assert (second["start"], second["size"], second["type"]) == (2048 + esp // 512, root // 512, "83")
    assert (second["start"] + second["size"]) * 512 == disk.stat().st_size  # the disk ends with root


def test_root_size_leaves_room_and_rounds_to_mib():
    assert builder.root_size(0) == 256 * MIB
    size = builder.root_size(300 * MIB + 1)
    assert size % MIB == 0 and size >= 300 * MIB * 4 // 3 + 256 * MIB


def test_grub_cfg_boots_the_kernel_by_label_on_the_serial_console():
    cfg = builder.grub_cfg("6.1.0-99-cloud-amd64")
    assert "set timeout=0" in cfg
    assert "serial --unit=0 --speed=115200" in cfg
    assert "linux /boot/vmlinuz-6.1.0-99-cloud-amd64 root=LABEL=kiln-root ro " in cfg
    assert "console=ttyS0,115200n8" in cfg
    assert "initrd /boot/initrd.img-6.1.0-99-cloud-amd64" in cfg


def test_build_refuses_without_root(monkeypatch, tmp_path):
    monkeypatch.setattr(builder.os, "geteuid", lambda: 1000)
    with pytest.raises(builder.BuildError, match="needs root"):
        builder.build(tmp_path)
