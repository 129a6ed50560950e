"""Fixtures of the step tests: the step context on stand-in disk files, an HTTP image server."""

from __future__ import annotations

import pytest

from agent.node.steps.context import StepContext
from tests.unit.node.steps.helpers import ImageServer, make_disk

GIB = 1 << 30


@pytest.fixture
def images_dir(tmp_path):
    """Directory the image server serves."""
    d = tmp_path / "images"
    d.mkdir()
    return d


@pytest.fixture
def server(images_dir):
    """A real HTTP server on 127.0.0.1 serving ``images_dir``."""
    srv = ImageServer(str(images_dir))
    yield srv
    srv.close()


@pytest.fixture
def disks(tmp_path, conf):
    """Two stand-in disk files mapped by [agent]disk_map: /dev/vda (5 GiB sparse) and /dev/vdb (64 MiB)."""
    vda = make_disk(str(tmp_path / "vda.img"), 5 * GIB)
    vdb = make_disk(str(tmp_path / "vdb.img"), 64 << 20)
    conf.override("disk_map", {"/dev/vda": vda, "/dev/vdb": vdb}, group="agent")
    return {"/dev/vda": vda, "/dev/vdb": vdb}


@pytest.fixture
def ctx(conf, disks):
    """A StepContext whose inventory lists the two stand-in disks."""
    inventory = {
        "disks": [
            {"name": "/dev/vda", "size": 5 * GIB, "serial": "kiln-root-0001", "rotational": True},
            {"name": "/dev/vdb", "size": 64 << 20, "serial": "kiln-data-0002", "rotational": True},
        ]
    }
    return StepContext(conf, lambda: inventory, node_uuid="1be26c0b-03f2-4d2e-ae87-c02d7f33c123")
