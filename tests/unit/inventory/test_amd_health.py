"""AMD GPU health: amdgpu RAS counters and XGMI links, on the mi300x fixture and small trees."""

from __future__ import annotations

import os

from agent.inventory import amd_health
from agent.inventory.base import Root
from agent.inventory.collect import collect
from agent.inventory.gpu_health import empty_health
from tests.unit.inventory.treebuild import FIXTURES, Tree

ZERO = {"ue": 0, "ce": 0}


def _mi300x() -> dict:
    return collect(os.path.join(FIXTURES, "mi300x"), use_nvml=False)


def test_mi300x_ras_counters():
    inv = _mi300x()
    ras = {g["pci_address"]: g["health"]["ras"] for g in inv["gpus"]}
    assert ras["0000:03:00.0"] == {b: ZERO for b in ("gfx", "mmhub", "sdma", "umc", "xgmi_wafl")}
    assert ras["0000:43:00.0"]["umc"] == {"ue": 1, "ce": 12}
    assert ras["0000:a3:00.0"]["xgmi_wafl"] == {"ue": 0, "ce": 3}
    assert all(g["health"]["not_supported"] == [] for g in inv["gpus"])
    assert all(g["health"]["nvml"] is False and g["health"]["ecc"] is None for g in inv["gpus"])
    assert inv["errors"] == []


def test_mi300x_xgmi_links_name_their_peers():
    inv = _mi300x()
    gpu0 = inv["gpus"][0]
    links = gpu0["health"]["xgmi_links"]
    peers = [g["pci_address"] for g in inv["gpus"][1:]]
    assert [link["peer"] for link in links] == peers
    assert [link["kfd_node"] for link in links] == list(range(3, 10))
    assert links[0] == {
        "peer": "0000:23:00.0",
        "kfd_node": 3,
        "weight": 15,
        "min_bandwidth_mb_s": 64000,
        "max_bandwidth_mb_s": 64000,
    }
    for gpu in inv["gpus"]:  # a full mesh: every GPU links to the seven others
        assert sorted(link["peer"] for link in gpu["health"]["xgmi_links"]) == sorted(
            g["pci_address"] for g in inv["gpus"] if g is not gpu
        )


def _ras_tree(tmp_path, **files: str) -> tuple[Root, str]:
    dev = "/sys/devices/pci0000:00/0000:00:01.1/0000:03:00.0"
    tree = Tree(tmp_path)
    for name, text in files.items():
        tree.write(f"{dev}/ras/{name}", text)
    return Root(str(tmp_path)), dev


def test_garbled_ras_file_is_null_and_named(tmp_path):
    root, dev = _ras_tree(
        tmp_path,
        umc_err_count="ue: 2\nce: 5\nde: 1",
        gfx_err_count="ue: many\nce: 0",
        sdma_err_count="ce: 4",
        features="feature mask: 0x3fff",
    )

    ras = amd_health.read_ras(root, dev)

    assert ras == {"gfx": None, "sdma": None, "umc": {"ue": 2, "ce": 5, "de": 1}}
    assert [(e.path, e.error) for e in root.errors] == [
        (f"{dev}/ras/gfx_err_count", "garbled: expected 'ue: N' / 'ce: N' lines, got 'ue: many'"),
        (f"{dev}/ras/sdma_err_count", "garbled: expected 'ue: N' and 'ce: N', got 'ce: 4'"),
    ]


def test_no_ras_directory_is_not_supported_not_an_error(tmp_path):
    root = Root(str(tmp_path))
    health = empty_health()
    amd_health.fill_health(root, "/sys/devices/pci0000:00/0000:00:01.1/0000:03:00.0", "0000:03:00.0", health)
    assert health["ras"] is None and health["not_supported"] == ["ras"]
    assert health["xgmi_links"] is None  # no KFD node for it
    assert root.errors == []
