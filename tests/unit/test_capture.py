"""Tests for kiln-capture-sysfs (agent.inventory.capture) on this machine and on fake trees."""

from __future__ import annotations

import json
import os

import pytest

from agent.cmd import capture as cmd
from agent.inventory import capture


@pytest.fixture(scope="module")
def host_tree(tmp_path_factory):
    """This machine captured once."""
    out = tmp_path_factory.mktemp("host")
    result = capture.capture("/", str(out))
    return out, result


def test_class_net_entries_equal_host(host_tree):
    out, _ = host_tree
    assert sorted(os.listdir(out / "sys/class/net")) == sorted(os.listdir("/sys/class/net"))


def test_class_net_links_resolve_inside_tree(host_tree):
    out, _ = host_tree
    for name in os.listdir("/sys/class/net"):
        link = out / "sys/class/net" / name
        assert os.path.islink(link)
        assert os.readlink(link) == os.readlink(f"/sys/class/net/{name}")
        real = os.path.realpath(link)
        assert real.startswith(str(out) + "/sys/devices/")
        assert open(os.path.join(real, "ifindex")).read() == open(f"/sys/class/net/{name}/ifindex").read()


def test_block_devices_and_sizes_copied(host_tree):
    out, _ = host_tree
    assert sorted(os.listdir(out / "sys/block")) == sorted(os.listdir("/sys/block"))
    for name in os.listdir("/sys/block"):
        assert (out / "sys/block" / name / "size").read_text() == open(f"/sys/block/{name}/size").read()


def test_cpuinfo_byte_identical(host_tree):
    out, _ = host_tree
    with open("/proc/cpuinfo", "rb") as f:
        assert (out / "proc/cpuinfo").read_bytes() == f.read()


def test_pci_devices_and_ids(host_tree):
    out, _ = host_tree
    host = sorted(os.listdir("/sys/bus/pci/devices"))
    assert sorted(os.listdir(out / "sys/bus/pci/devices")) == host
    for bdf in host:
        assert (out / "sys/bus/pci/devices" / bdf / "vendor").read_text() == open(
            f"/sys/bus/pci/devices/{bdf}/vendor"
        ).read()
        assert not (out / "sys/bus/pci/devices" / bdf / "config").exists()
        if os.path.islink(f"/sys/bus/pci/devices/{bdf}/driver"):
            assert os.readlink(out / "sys/bus/pci/devices" / bdf / "driver") == os.readlink(
                f"/sys/bus/pci/devices/{bdf}/driver"
            )


def test_manifest(host_tree):
    out, result = host_tree
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["kernel"] == open("/proc/sys/kernel/osrelease").read().strip()
    assert manifest["hostname"] == open("/proc/sys/kernel/hostname").read().strip()
    assert manifest["files"] == result.files > 100
    assert (out / "CAPTURE-ERRORS.txt").read_text().count("\n") == len(result.errors)


def test_no_link_escapes_the_tree(host_tree):
    out, _ = host_tree
    for dirpath, dirnames, filenames in os.walk(out):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                target = os.path.normpath(os.path.join(dirpath, os.readlink(path)))
                assert target.startswith(str(out) + "/"), path


def _fake_root(tmp_path):
    """A small fake host: one PCI NIC, a link loop, an oversize and a write-only attribute."""
    root = tmp_path / "root"
    dev = root / "sys/devices/pci0000:00/0000:00:03.0"
    (dev / "net/eth9").mkdir(parents=True)
    (dev / "vendor").write_text("0x8086\n")
    (dev / "config").write_bytes(b"\x86\x80" * 128)
    (dev / "resource0").write_bytes(b"\x00" * 16)
    (dev / "huge").write_bytes(b"x" * (capture.CAP + 5000))
    (dev / "remove").write_text("")
    wo = dev / "write_only"
    wo.write_text("secret")
    wo.chmod(0o200)
    (dev / "net/eth9/address").write_text("aa:bb:cc:dd:ee:ff\n")
    os.symlink("../../../0000:00:03.0", dev / "net/eth9/device")
    # a loop: the kept `device` link points at itself, and a subdir links back up
    (dev / "loopdir").mkdir()
    os.symlink("../loopdir", dev / "loopdir/subsystem")
    os.symlink("../../loopdir/device", dev / "loopdir/device")
    (root / "sys/class/net").mkdir(parents=True)
    os.symlink("../../devices/pci0000:00/0000:00:03.0/net/eth9", root / "sys/class/net/eth9")
    (root / "sys/bus/pci/devices").mkdir(parents=True)
    os.symlink("../../../devices/pci0000:00/0000:00:03.0", root / "sys/bus/pci/devices/0000:00:03.0")
    (root / "proc").mkdir()
    (root / "proc/cpuinfo").write_text("processor\t: 0\n")
    return root


def test_fake_tree(tmp_path):
    root = _fake_root(tmp_path)
    out = tmp_path / "out"
    result = capture.capture(str(root), str(out))
    dev = out / "sys/devices/pci0000:00/0000:00:03.0"
    assert (dev / "vendor").read_text() == "0x8086\n"
    assert (out / "sys/class/net/eth9/address").read_text() == "aa:bb:cc:dd:ee:ff\n"
    assert os.readlink(out / "sys/class/net/eth9/device") == "../../../0000:00:03.0"
    # skipped: config, resource*, remove, write-only
    for name in ("config", "resource0", "remove", "write_only"):
        assert not (dev / name).exists(), name
    # oversize file capped and recorded
    assert (dev / "huge").stat().st_size == capture.CAP
    assert any(e.endswith("huge: capped at 65536 bytes") for e in result.errors)
    # the loop is copied as links, never followed
    assert os.readlink(dev / "loopdir/subsystem") == "../loopdir"
    assert os.readlink(dev / "loopdir/device") == "../../loopdir/device"
    assert (out / "proc/cpuinfo").read_text() == "processor\t: 0\n"


def test_unreadable_attribute_recorded(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads mode-0400 files of others; the check needs an unprivileged user")
    root = _fake_root(tmp_path)
    secret = root / "sys/devices/pci0000:00/0000:00:03.0/serial"
    secret.write_text("x\n")
    secret.chmod(0o000)
    result = capture.capture(str(root), str(tmp_path / "out"))
    assert any("0000:00:03.0/serial" in e for e in result.errors)


def test_cli_writes_tar(tmp_path):
    root = _fake_root(tmp_path)
    tar = tmp_path / "t.tar.gz"
    rc = cmd.main(["--root", str(root), "--output", str(tmp_path / "cli"), "--tar", str(tar)])
    assert rc == 0
    import tarfile

    with tarfile.open(tar) as t:
        names = t.getnames()
    assert "cli/sys/class/net/eth9" in names
    assert "cli/MANIFEST.json" in names


FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "sysfs")


@pytest.mark.parametrize("tree", ["hgx-h100", "mi300x"])
def test_capturing_a_tree_keeps_gpu_health(tree, tmp_path):
    """The kernel log (Xids), the boot facts and amdgpu's ras/ counters survive a capture."""
    from agent.inventory.collect import collect

    src = os.path.join(FIXTURES, tree)
    out = tmp_path / "out"
    capture.capture(src, str(out))
    before, after = collect(src, use_nvml=False), collect(str(out), use_nvml=False)
    assert [g["health"] for g in after["gpus"]] == [g["health"] for g in before["gpus"]]
    assert after.get("kernel_log") == before.get("kernel_log")
    if tree == "hgx-h100":
        assert sum(len(g["health"]["xid_errors"]) for g in after["gpus"]) == 5
        assert (out / "dev/kmsg").read_text().splitlines()[0].startswith("5,0,0,-;Linux version")
    else:
        assert after["gpus"][2]["health"]["ras"]["umc"] == {"ue": 1, "ce": 12}


def test_live_kernel_log_is_captured_as_a_plain_file(host_tree):
    out, _result = host_tree
    if not os.access("/dev/kmsg", os.R_OK):
        pytest.skip("/dev/kmsg is not readable here")
    kmsg = out / "dev/kmsg"
    assert kmsg.is_file() and not kmsg.is_symlink()
    first = kmsg.read_text().splitlines()[0]
    assert first.count(",") >= 3 and ";" in first
