"""Fixtures of the functional step tests: loop devices standing in for disks (root only)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from agent.node.steps.context import StepContext
from tests.unit.node.conftest import conf  # noqa: F401 - a fixture
from tests.unit.node.steps.conftest import images_dir, server  # noqa: F401 - fixtures

GIB = 1 << 30


@pytest.fixture
def loop_disk(tmp_path):
    """A 256 MiB loop device over a sparse file; detached afterwards."""
    if os.geteuid() != 0 or not shutil.which("losetup"):
        pytest.skip("needs root and losetup")
    backing = tmp_path / "loop.img"
    with open(backing, "wb") as f:
        f.truncate(256 << 20)
    try:
        dev = subprocess.run(
            ["losetup", "-f", "--show", str(backing)], capture_output=True, text=True, check=True
        )
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"no loop device available: {exc.stderr.strip()}")
    path = dev.stdout.strip()
    try:
        yield path, str(backing)
    finally:
        subprocess.run(["losetup", "-d", path], capture_output=True)


@pytest.fixture
def loop_ctx(conf, loop_disk):  # noqa: F811 - conf is the imported fixture
    """A StepContext whose one inventory disk /dev/sdx (5 GiB claimed) is the loop device."""
    conf.override("disk_map", {"/dev/sdx": loop_disk[0]}, group="agent")
    inventory = {"disks": [{"name": "/dev/sdx", "size": 5 * GIB, "serial": "LOOP0001", "rotational": False}]}
    return StepContext(conf, lambda: inventory)
