"""Fixtures of the node daemon tests: global CONF with overrides undone, an in-process transport."""

from __future__ import annotations

import copy
import os
import shutil
import uuid

import pytest
from oslo_config import cfg

from agent.common import config, rpc
from tests.unit.node.recorder import RecordingConductor

MEMORY_URL = "kombu+memory:////"

INVENTORY = {
    "system": {"uuid": "4c4c4544-0042-3510-8052-b4c04f4e3332", "pxe_interface": "52:54:00:aa:bb:01"},
    "nics": [
        {"name": "eth0", "mac_address": "52:54:00:AA:BB:01", "pci_address": "0000:01:00.0", "carrier": True,
         "speed_mbps": 25000, "is_virtual_function": False, "ipv4_addresses": ["10.0.0.5"]},
        {"name": "eth1", "mac_address": "52:54:00:aa:bb:02", "pci_address": "0000:01:00.1", "carrier": True,
         "speed_mbps": 25000, "is_virtual_function": False, "ipv4_addresses": []},
        {"name": "eth1v0", "mac_address": "7a:00:00:00:00:09", "pci_address": "0000:01:02.0", "carrier": True,
         "speed_mbps": 25000, "is_virtual_function": True, "ipv4_addresses": []},
        {"name": "docker0", "mac_address": "02:42:ac:11:00:01", "pci_address": None, "carrier": False,
         "speed_mbps": None, "is_virtual_function": False, "ipv4_addresses": []},
    ],
    "disks": [{"kernel_name": "nvme0n1", "name": "/dev/nvme0n1", "size": 3840755982336}],
    "gpus": [
        {"pci_address": "0000:18:00.0", "name": "H100 SXM5 80GB",
         "pcie": {"current_width": 16, "max_width": 16, "current_speed": "32.0 GT/s PCIe"}},
    ],
    "errors": [],
}  # fmt: skip


@pytest.fixture
def inventory() -> dict:
    """A fresh copy of a small inventory."""
    return copy.deepcopy(INVENTORY)


@pytest.fixture
def conf():
    """The global CONF with Kiln's options; every override is undone afterwards."""
    config.register_opts(cfg.CONF)
    try:
        cfg.CONF([], project="kiln")
    except cfg.Error:
        pass
    set_names: list[tuple[str, str | None]] = []

    def override(name: str, value, group: str | None = None) -> None:
        cfg.CONF.set_override(name, value, group=group)
        set_names.append((name, group))

    cfg.CONF.override = override  # type: ignore[attr-defined]
    yield cfg.CONF
    for name, group in set_names:
        cfg.CONF.clear_override(name, group=group)


@pytest.fixture
def transport(conf):
    """An in-process kombu memory transport."""
    t = rpc.get_transport(conf, url=MEMORY_URL)
    yield t
    t.cleanup()


@pytest.fixture
def conductor(transport, topic):
    """A recording conductor served on this test's topic."""
    rec = RecordingConductor(str(uuid.uuid4()), f"token-{uuid.uuid4().hex}")
    srv = rpc.get_server(transport, topic, "conductor-1", [rec])
    srv.start()
    yield rec
    rpc.stop_server(srv, 5)


@pytest.fixture
def topic() -> str:
    """A conductor topic of this test only."""
    return f"kiln.conductor.test-{uuid.uuid4().hex[:8]}"


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def clone_tree(src: str, dest: str) -> str:
    """Copy a fixture tree cheaply (hard links); change files in it only with ``replace_file``."""
    shutil.copytree(src, dest, symlinks=True, copy_function=_link_or_copy)
    return dest


def replace_file(path: str, content: str) -> None:
    """Write ``path`` as a new file, so a hard-linked original fixture stays untouched."""
    real = os.path.realpath(path)
    os.unlink(real)
    with open(real, "w") as f:
        f.write(content)
