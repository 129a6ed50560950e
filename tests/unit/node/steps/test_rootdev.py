"""Root device hints on the fixture trees' disks."""

from __future__ import annotations

import os

import pytest

from agent.inventory.collect import collect
from agent.node.steps import rootdev
from agent.node.steps.errors import StepError

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "sysfs")


def disks_of(tree: str) -> list[dict]:
    return collect(os.path.join(FIXTURES, tree), use_nvml=False)["disks"]


@pytest.fixture(scope="module")
def sas() -> list[dict]:
    return disks_of("storage-sas")


@pytest.fixture(scope="module")
def hgx() -> list[dict]:
    return disks_of("hgx-h100")


def names(disks: list[dict]) -> list[str]:
    return [d["name"] for d in disks]


def test_default_is_smallest_disk_of_4gib(sas, hgx):
    assert rootdev.select_root_device(sas)["name"] == "/dev/sda"
    assert rootdev.select_root_device(hgx)["name"] == "/dev/nvme0n1"
    assert rootdev.select_root_device(disks_of("vm"))["name"] == "/dev/vdb"  # 20 GiB beats 40 GiB


def test_default_skips_disks_under_4gib():
    disks = [{"name": "/dev/sda", "size": 2 << 30}, {"name": "/dev/sdb", "size": 8 << 30}]
    assert rootdev.select_root_device(disks)["name"] == "/dev/sdb"
    with pytest.raises(StepError, match="no disk of at least 4 GiB"):
        rootdev.select_root_device(disks[:1])


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        ({"serial": "ZA1A2B32"}, ["/dev/sde"]),
        ({"serial": "za1a2b32"}, ["/dev/sde"]),  # case-insensitive, as Ironic
        ({"hctl": "6:0:1:0"}, ["/dev/sdd"]),
        ({"wwn": "0x5002538e40a1b2c4"}, ["/dev/sdb"]),
        ({"rotational": False}, ["/dev/sda", "/dev/sdb"]),
        ({"rotational": "true", "size": ">= 7000"}, ["/dev/sdc", "/dev/sdd", "/dev/sde", "/dev/sdf"]),
        ({"size": 447}, ["/dev/sda", "/dev/sdb"]),
        ({"size": "<or> 447 <or> 100"}, ["/dev/sda", "/dev/sdb"]),
        ({"size": "< 448"}, ["/dev/sda", "/dev/sdb"]),
        ({"vendor": "seagate", "serial": "<in> B31"}, ["/dev/sdd"]),
        ({"model": "<or> ST8000NM017B <or> nothing"}, ["/dev/sdc", "/dev/sdd", "/dev/sde"]),  # sdf has none
        ({"model": "s!= ST8000NM017B"}, ["/dev/sda", "/dev/sdb"]),
        ({"name": "sdc"}, ["/dev/sdc"]),
        ({"name": "/dev/sdf"}, ["/dev/sdf"]),
        ({"by_path": "/dev/disk/by-path/pci-0000:18:00.0-sas-phy2-lun-0"}, ["/dev/sde"]),
        ({"serial": "nope"}, []),
    ],
)
def test_hints_on_storage_sas(sas, hints, expected):
    assert names(rootdev.find_disks(sas, hints)) == expected


def test_hints_on_hgx(hgx):
    assert names(rootdev.find_disks(hgx, {"model": "<in> MZ1L2960"})) == ["/dev/nvme0n1", "/dev/nvme1n1"]
    assert rootdev.select_root_device(hgx, {"serial": "S64HNE0T500005"})["name"] == "/dev/nvme6n1"
    assert (
        rootdev.select_root_device(hgx, {"size": ">= 3000", "model": "<in> MZQL2"})["name"] == "/dev/nvme2n1"
    )
    assert names(rootdev.find_disks(hgx, {"wwn": "eui.36344730521000020025384500000001"})) == ["/dev/nvme1n1"]


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        ({"colour": "blue"}, "unknown root device hints colour"),
        ({"size": "big"}, "'size' is not an integer"),
        ({"size": 0}, "'size' must be a positive integer"),
        ({"rotational": "perhaps"}, "'rotational' is not a Boolean"),
        ({"serial": 12}, "'serial' must be a string"),
        ({"model": "  "}, "'model' is empty"),
    ],
)
def test_bad_hints(sas, hints, message):
    with pytest.raises(StepError, match=message):
        rootdev.find_disks(sas, hints)


def test_no_match_names_the_disks(sas):
    with pytest.raises(
        StepError, match=r"no disk matches the root device hints .* disks: /dev/sda, /dev/sdb"
    ):
        rootdev.select_root_device(sas, {"serial": "nope"})


def test_garbled_disks_are_skipped():
    disks = [
        {"name": None},
        "junk",
        {"name": "/dev/sdz", "size": "huge"},
        {"name": "/dev/sdy", "size": 5 << 30},
    ]
    assert rootdev.select_root_device(disks)["name"] == "/dev/sdy"
    assert names(rootdev.find_disks(disks, {"size": 5})) == ["/dev/sdy"]
