"""kiln-ramdisk build: cached, small, with the listed modules (and no others) and the agent installed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from agent.ramdisk import builder, modules

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


def _listing(initramfs: Path) -> set[str]:
    zstd = subprocess.Popen(["zstd", "-dc", str(initramfs)], stdout=subprocess.PIPE)
    names = subprocess.run(
        ["cpio", "-t", "--quiet"], stdin=zstd.stdout, capture_output=True, text=True, check=True
    )
    zstd.wait()
    return {name.removeprefix("./") for name in names.stdout.splitlines()}


def test_second_build_comes_from_the_cache(ramdisk, tmp_path):
    started = time.monotonic()
    again = builder.build(tmp_path)
    assert again.cached and again.key == ramdisk.key
    assert time.monotonic() - started < 60
    assert again.initramfs.read_bytes() == ramdisk.initramfs.read_bytes()


def test_initramfs_is_within_200_mib(ramdisk):
    assert ramdisk.initramfs_bytes <= 200 * MIB
    assert ramdisk.kernel.stat().st_size > 4 * MIB  # a real bzImage


def test_console_script_prints_the_size(ramdisk, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "agent.cmd.ramdisk", "build", "--output", str(tmp_path)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    assert "MiB zstd" in out.stdout and "from the cache" in out.stdout
    assert (tmp_path / builder.INITRAMFS).stat().st_size == ramdisk.initramfs_bytes


def test_listed_modules_and_only_their_closure_are_inside(ramdisk):
    names = _listing(ramdisk.initramfs)
    build = json.loads((ramdisk.initramfs.parent / "build.json").read_text())
    moddir = f"usr/lib/modules/{build['kernel']}/"
    inside = {n[len(moddir) :] for n in names if n.startswith(moddir + "kernel/") and ".ko" in n}
    assert inside == set(build["modules"])
    present = {modules.module_name(p) for p in inside}
    for name in modules.WANTED:
        assert name in present, f"{name} is missing from the ramdisk"
    assert "amdgpu" not in present and "btrfs" not in present
    assert moddir + "modules.dep" in names


def test_agent_and_its_unit_are_installed(ramdisk):
    names = _listing(ramdisk.initramfs)
    for path in (
        "init",
        "usr/local/bin/kiln-agent",
        "usr/local/lib/python3.11/dist-packages/agent/cmd/agent.py",
        "usr/local/lib/python3.11/dist-packages/oslo_messaging/__init__.py",
        "etc/systemd/system/kiln-agent.service",
        "etc/systemd/system/multi-user.target.wants/kiln-agent.service",
        "etc/systemd/network/20-kiln-dhcp.network",
        "etc/kiln/kiln.conf",
    ):
        assert path in names, path
    assert not any(n.startswith("usr/local/lib/python3.11/dist-packages/sqlalchemy/") for n in names)
    assert not any(n.startswith("usr/share/doc/") and n != "usr/share/doc/" for n in names)
