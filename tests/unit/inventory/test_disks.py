"""read_disks on a constructed tree with SATA, SAS, NVMe, virtio, USB and virtual devices."""

from __future__ import annotations

import pytest

from agent.inventory.base import Root
from agent.inventory.disks import read_disks, wwn_from_wwid
from tests.unit.inventory.treebuild import Tree, fixture_root

SATA_DEV = "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0"
SAS_HBA = "/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0"
SAS_DEV = SAS_HBA + "/host1/port-1:0/end_device-1:0/target1:0:0/1:0:0:0"
NVME_PCI = "/sys/devices/pci0000:80/0000:80:01.1/0000:81:00.0"
NVME_CTRL = NVME_PCI + "/nvme/nvme0"
VIRTIO_DEV = "/sys/devices/pci0000:00/0000:00:02.0/virtio1"
USB_DEV = "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0"


def _disk(
    tree: Tree, name: str, device: str | None, dev: str, size: int, *, rotational: str = "0", **kw
) -> str:
    """Create /sys/block/<name> under ``device`` (or /sys/devices/virtual) and return its directory."""
    parent = device or "/sys/devices/virtual"
    block = f"{parent}/block/{name}" if device is None or not name.startswith("nvme") else f"{parent}/{name}"
    tree.files(block, dev=dev, size=str(size), removable=kw.pop("removable", "0"))
    tree.files(
        f"{block}/queue",
        rotational=rotational,
        logical_block_size=kw.pop("logical", "512"),
        physical_block_size=kw.pop("physical", "4096"),
    )
    for attr, value in kw.items():
        tree.write(f"{block}/{attr}", value)
    if device is not None:
        tree.link(f"{block}/device", device)
    tree.link(f"/sys/block/{name}", block)
    return block


def _host(tmp_path) -> Tree:
    tree = Tree(tmp_path)
    # SATA disk behind AHCI, with a udev record.
    tree.files(
        SATA_DEV,
        vendor="ATA     ",
        model="SAMSUNG MZ7L3960",
        wwid="naa.5002538f33a1b2c3",
        vpd_pg80=b"\x00\x80\x00\x0cS6ESNA0T1234",
    )
    _disk(tree, "sda", SATA_DEV, "8:0", 1875385008)
    tree.write(
        "/run/udev/data/b8:0",
        "S:disk/by-id/ata-SAMSUNG_MZ7L3960HCJR-00A07_S6ESNA0T1234\n"
        "E:ID_SERIAL=SAMSUNG_MZ7L3960HCJR-00A07_S6ESNA0T1234\nE:ID_SERIAL_SHORT=S6ESNA0T1234\n"
        "E:ID_MODEL=SAMSUNG_MZ7L3960HCJR-00A07\nE:ID_WWN=0x5002538f33a1b2c3\n"
        "E:ID_WWN_WITH_EXTENSION=0x5002538f33a1b2c3\nE:ID_PATH=pci-0000:00:17.0-ata-1.0\nG:systemd\n",
    )
    # SAS HDD behind an HBA, no udev record: sysfs only.
    tree.files(SAS_HBA, numa_node="1")
    tree.files(
        SAS_DEV,
        vendor="SEAGATE ",
        model="ST18000NM004J   ",
        wwid="naa.6000c2948b2f8f3a1b2c3d4e5f607182",
        vpd_pg80=b"\x00\x80\x00\x14ZR5ABCDE0000C1234567",
    )
    _disk(tree, "sdb", SAS_DEV, "8:16", 35156656128, rotational="1")
    # NVMe namespace of controller nvme0.
    tree.files(NVME_PCI, numa_node="1", vendor="0x144d", device="0xa80a")
    tree.files(
        NVME_CTRL,
        model="SAMSUNG MZQL27T6HBLA-00A07               ",
        serial="  S6CKNE0T700123",
        firmware_rev="GDC5602Q",
    )
    _disk(tree, "nvme0n1", NVME_CTRL, "259:0", 15002931888, wwid="eui.36434e30547001230025384500000001")
    # virtio-blk.
    tree.files(VIRTIO_DEV, vendor="0x1af4", device="0x0002")
    tree.files("/sys/devices/pci0000:00/0000:00:02.0", numa_node="-1")
    _disk(tree, "vda", VIRTIO_DEV, "254:0", 536870912, rotational="1", serial="vol-0123")
    # USB stick.
    tree.files(USB_DEV, vendor="SanDisk ", model="Ultra           ")
    _disk(tree, "sdc", USB_DEV, "8:32", 60063744, removable="1")
    # Virtual block devices: none of these is a disk.
    for name, dev in (
        ("loop0", "7:0"),
        ("zram0", "253:0"),
        ("dm-0", "252:0"),
        ("md127", "9:127"),
        ("ram0", "1:0"),
    ):
        _disk(tree, name, None, dev, 2048)
    return tree


def _by_name(tmp_path, **kw):
    root = Root(str(tmp_path))
    disks = read_disks(root, **kw)
    return root, disks, {d["kernel_name"]: d for d in disks}


def test_physical_disks_only_sorted(tmp_path):
    _host(tmp_path)
    root, disks, _ = _by_name(tmp_path)
    assert [d["name"] for d in disks] == ["/dev/nvme0n1", "/dev/sda", "/dev/sdb", "/dev/sdc", "/dev/vda"]
    assert root.errors == []


def test_include_md_adds_raid_and_dm(tmp_path):
    _host(tmp_path)
    _, _, disks = _by_name(tmp_path, include_md=True)
    assert {"dm-0", "md127"} <= set(disks) and "loop0" not in disks
    assert disks["md127"]["size"] == 2048 * 512
    assert disks["md127"]["transport"] is None and disks["md127"]["pci_address"] is None


def test_sata_with_udev(tmp_path):
    _host(tmp_path)
    sda = _by_name(tmp_path)[2]["sda"]
    assert sda == {
        "name": "/dev/sda",
        "kernel_name": "sda",
        "model": "SAMSUNG_MZ7L3960HCJR-00A07",
        "vendor": "ATA",
        "serial": "S6ESNA0T1234",
        "wwn": "0x5002538f33a1b2c3",
        "wwn_with_extension": "0x5002538f33a1b2c3",
        "wwn_vendor_extension": None,
        "size": 1875385008 * 512,
        "rotational": False,
        "hctl": "0:0:0:0",
        "by_path": "/dev/disk/by-path/pci-0000:00:17.0-ata-1.0",
        "logical_sector_size": 512,
        "physical_sector_size": 4096,
        "transport": "sata",
        "removable": False,
        "pci_address": "0000:00:17.0",
        "numa_node": None,
        "nvme": None,
    }


def test_sas_from_sysfs_only(tmp_path):
    _host(tmp_path)
    sdb = _by_name(tmp_path)[2]["sdb"]
    assert sdb["transport"] == "sas"
    assert sdb["hctl"] == "1:0:0:0"
    assert (sdb["vendor"], sdb["model"]) == ("SEAGATE", "ST18000NM004J")
    assert sdb["serial"] == "ZR5ABCDE0000C1234567"  # from VPD page 0x80
    assert sdb["wwn"] == "0x6000c2948b2f8f3a"
    assert sdb["wwn_vendor_extension"] == "0x1b2c3d4e5f607182"
    assert sdb["wwn_with_extension"] == "0x6000c2948b2f8f3a1b2c3d4e5f607182"
    assert sdb["size"] == 35156656128 * 512 and sdb["rotational"] is True
    assert (sdb["pci_address"], sdb["numa_node"]) == ("0000:3b:00.0", 1)
    assert sdb["by_path"] is None


def test_nvme_controller_facts(tmp_path):
    _host(tmp_path)
    nvme = _by_name(tmp_path)[2]["nvme0n1"]
    assert nvme["transport"] == "nvme"
    assert nvme["model"] == "SAMSUNG MZQL27T6HBLA-00A07"
    assert nvme["serial"] == "S6CKNE0T700123"
    assert nvme["nvme"] == {
        "model": "SAMSUNG MZQL27T6HBLA-00A07",
        "serial": "S6CKNE0T700123",
        "firmware": "GDC5602Q",
        "controller": "nvme0",
    }
    assert nvme["wwn"] == "eui.36434e30547001230025384500000001"
    assert (nvme["pci_address"], nvme["numa_node"]) == ("0000:81:00.0", 1)
    assert nvme["hctl"] is None and nvme["vendor"] is None


def test_nvme_multipath_subsystem(tmp_path):
    tree = _host(tmp_path)
    subsys = "/sys/devices/virtual/nvme-subsystem/nvme-subsys1"
    pci = "/sys/devices/pci0000:c0/0000:c0:01.1/0000:c1:00.0"
    tree.files(pci, numa_node="3")
    tree.files(f"{pci}/nvme/nvme1", model="KIOXIA KCMYXRUG7T68", serial="X2K0A01", firmware_rev="1UET7104")
    tree.link(f"{subsys}/nvme1", f"{pci}/nvme/nvme1")
    tree.files(subsys, model="KIOXIA KCMYXRUG7T68")
    _disk(tree, "nvme1n1", subsys, "259:1", 1000, wwid="eui.00000000000000008ce38e0400a3b1c2")
    disk = _by_name(tmp_path)[2]["nvme1n1"]
    assert disk["nvme"]["controller"] == "nvme1" and disk["nvme"]["firmware"] == "1UET7104"
    assert (disk["pci_address"], disk["numa_node"], disk["transport"]) == ("0000:c1:00.0", 3, "nvme")


def test_virtio_and_usb(tmp_path):
    _host(tmp_path)
    disks = _by_name(tmp_path)[2]
    vda, sdc = disks["vda"], disks["sdc"]
    assert (vda["transport"], vda["serial"], vda["vendor"], vda["hctl"]) == (
        "virtio",
        "vol-0123",
        "0x1af4",
        None,
    )
    assert (vda["pci_address"], vda["numa_node"]) == ("0000:00:02.0", None)
    assert (sdc["transport"], sdc["removable"], sdc["hctl"]) == ("usb", True, "6:0:0:0")
    assert (sdc["vendor"], sdc["model"], sdc["serial"]) == ("SanDisk", "Ultra", None)


def test_garbled_size_is_recorded(tmp_path):
    tree = _host(tmp_path)
    tree.write(f"{SATA_DEV}/block/sda/size", "lots")
    root, _, disks = _by_name(tmp_path)
    assert disks["sda"]["size"] is None
    assert [p.path for p in root.errors] == ["/sys/block/sda/size"]


@pytest.mark.parametrize(
    ("wwid", "expected"),
    [
        ("naa.5000C500A1B2C3D4", ("0x5000c500a1b2c3d4", "0x5000c500a1b2c3d4", None)),
        (
            "naa.600a0b80001234560000abcd5e6f7a8b",
            ("0x600a0b8000123456", "0x600a0b80001234560000abcd5e6f7a8b", "0x0000abcd5e6f7a8b"),
        ),
        ("eui.0025388b91b0a3c1", ("eui.0025388b91b0a3c1", "eui.0025388b91b0a3c1", None)),
        ("t10.ATA     QEMU HARDDISK", (None, None, None)),
        ("naa.xyz", (None, None, None)),
        (None, (None, None, None)),
    ],
)
def test_wwn_from_wwid(wwid, expected):
    assert wwn_from_wwid(wwid) == expected


def test_hgx_h100_fixture():
    root = fixture_root("hgx-h100")
    disks = {d["kernel_name"]: d for d in read_disks(root)}
    assert sorted(disks) == [f"nvme{n}n1" for n in range(10)]
    boot = disks["nvme0n1"]
    assert (boot["size"], boot["serial"], boot["model"]) == (
        960197124096,
        "S665NE0T100001",
        "SAMSUNG MZ1L2960HCJR-00A07",
    )
    assert boot["nvme"] == {
        "model": "SAMSUNG MZ1L2960HCJR-00A07",
        "serial": "S665NE0T100001",
        "firmware": "GDC7302Q",
        "controller": "nvme0",
    }
    assert boot["wwn"] == "eui.36344730521000010025384500000001"
    assert boot["by_path"] == "/dev/disk/by-path/pci-0000:04:00.0-nvme-1"
    assert (boot["pci_address"], boot["numa_node"], boot["transport"]) == ("0000:04:00.0", 0, "nvme")
    data = disks["nvme6n1"]
    assert (data["size"], data["logical_sector_size"], data["physical_sector_size"]) == (
        3840755982336,
        4096,
        4096,
    )
    assert (data["serial"], data["nvme"]["firmware"]) == ("S64HNE0T500005", "GDC5602Q")
    assert (data["pci_address"], data["numa_node"]) == ("0000:9c:00.0", 1)
    assert root.errors == []


def test_storage_sas_fixture():
    root = fixture_root("storage-sas")
    disks = {d["kernel_name"]: d for d in read_disks(root)}
    assert sorted(disks) == ["sda", "sdb", "sdc", "sdd", "sde", "sdf"]  # md0, loop0, zram0 skipped
    sda, sdc, sdf = disks["sda"], disks["sdc"], disks["sdf"]
    assert (sda["transport"], sda["hctl"], sda["vendor"], sda["serial"]) == (
        "sata",
        "0:0:0:0",
        "ATA",
        "S45PNA0M500123",
    )
    assert (sda["wwn"], sda["size"], sda["rotational"]) == ("0x5002538e40a1b2c3", 937703088 * 512, False)
    assert sda["by_path"] == "/dev/disk/by-path/pci-0000:00:17.0-ata-1.0"
    assert (sdc["transport"], sdc["hctl"], sdc["vendor"], sdc["model"]) == (
        "sas",
        "6:0:0:0",
        "SEAGATE",
        "ST8000NM017B",
    )
    assert (sdc["serial"], sdc["wwn"], sdc["rotational"]) == ("ZA1A2B30", "0x5000c500d1a2b300", True)
    assert (sdc["pci_address"], sdc["size"]) == ("0000:18:00.0", 15628053168 * 512)
    assert disks["sdd"]["hctl"] == "6:0:1:0"
    assert sdf["model"] is None and sdf["serial"] == "ZA1A2B33"  # model is 16 spaces, udev has none
    with_md = {d["kernel_name"]: d for d in read_disks(fixture_root("storage-sas"), include_md=True)}
    assert with_md["md0"]["size"] == 937431040 * 512 and "loop0" not in with_md and "zram0" not in with_md
    assert root.errors == []


def test_vm_fixture_without_udev():
    root = fixture_root("vm")
    disks = read_disks(root)
    assert [(d["name"], d["size"], d["serial"], d["transport"], d["pci_address"]) for d in disks] == [
        ("/dev/vda", 42949672960, "kiln-root-0001", "virtio", "0000:00:04.0"),
        ("/dev/vdb", 21474836480, None, "virtio", "0000:00:05.0"),
    ]
    assert all(d["by_path"] is None and d["numa_node"] is None for d in disks)
    assert root.errors == []


def test_host_kvm_capture():
    root = fixture_root("host-kvm")
    (vda,) = read_disks(root)  # loop0-7 and zram0 are not disks
    assert (vda["name"], vda["size"], vda["transport"], vda["pci_address"]) == (
        "/dev/vda",
        274877906944,
        "virtio",
        "0000:00:02.0",
    )
    assert (vda["rotational"], vda["logical_sector_size"], vda["physical_sector_size"]) == (True, 512, 4096)
    assert (vda["serial"], vda["vendor"], vda["numa_node"]) == ("1626630747710256", "0x1af4", None)
    assert root.errors == []


def test_garbled_dev_number_is_recorded_and_not_followed(tmp_path):
    tree = _host(tmp_path)
    tree.write(f"{SATA_DEV}/block/sda/dev", "../../../etc")
    root, _, disks = _by_name(tmp_path)
    assert disks["sda"]["by_path"] is None and disks["sda"]["serial"] == "S6ESNA0T1234"  # VPD page 0x80
    assert [p.path for p in root.errors] == ["/sys/block/sda/dev"]
