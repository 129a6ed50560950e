"""The udev database parser."""

from __future__ import annotations

from agent.inventory.base import Root
from agent.inventory.udev import parse_udev_record, read_udev, udev_available
from tests.unit.inventory.treebuild import Tree

RECORD = """S:disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0T500001
S:disk/by-path/pci-0000:1a:00.0-nvme-1
W:3
I:1738240000
E:ID_SERIAL=SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0T500001
E:ID_SERIAL_SHORT=S64HNE0T500001
E:ID_WWN=eui.36344730525000010025384500000001
E:ID_PATH=pci-0000:1a:00.0-nvme-1
E:ID_FS_LABEL=a=b
E:=nokey
E:NOEQUALS
G:systemd
Q:systemd
V:1
garbage line
"""


def test_parse_record():
    record = parse_udev_record(RECORD)
    assert record["links"] == [
        "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0T500001",
        "/dev/disk/by-path/pci-0000:1a:00.0-nvme-1",
    ]
    assert record["properties"] == {
        "ID_SERIAL": "SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0T500001",
        "ID_SERIAL_SHORT": "S64HNE0T500001",
        "ID_WWN": "eui.36344730525000010025384500000001",
        "ID_PATH": "pci-0000:1a:00.0-nvme-1",
        "ID_FS_LABEL": "a=b",
    }


def test_read_from_root(tmp_path):
    Tree(tmp_path).write("/run/udev/data/b259:4", RECORD)
    root = Root(str(tmp_path))
    assert udev_available(root)
    assert read_udev(root, "b259:4")["properties"]["ID_SERIAL_SHORT"] == "S64HNE0T500001"
    assert read_udev(root, "b259:5") is None
    assert root.errors == []  # a device without a record is normal, not a problem


def test_no_udev_database(tmp_path):
    Tree(tmp_path).mkdir("/run")
    root = Root(str(tmp_path))
    assert not udev_available(root)
    assert read_udev(root, "b8:0") is None
    assert root.errors == []


def test_ids_cannot_leave_the_database(tmp_path):
    Tree(tmp_path).write("/run/udev/secret", "E:ID_SERIAL=leaked\n").write("/run/udev/data/b8:0", "E:A=1\n")
    root = Root(str(tmp_path))
    assert read_udev(root, "../secret") is None
    assert read_udev(root, "b8:0/../../secret") is None
    assert read_udev(root, "") is None
