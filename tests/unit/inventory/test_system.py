"""read_system on constructed trees and the fixture captures."""

from __future__ import annotations

import os

import pytest

from agent.inventory.base import Root
from agent.inventory.system import SECURE_BOOT_VAR, parse_bootif, read_system
from tests.unit.inventory.treebuild import Tree, fixture_root

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")
DMI = "/sys/class/dmi/id"


def _server(tmp_path, cmdline: str = "ro quiet") -> Tree:
    tree = Tree(tmp_path)
    tree.files(
        DMI,
        sys_vendor="Supermicro",
        product_name="SYS-821GE-TNHR",
        product_version="0123456789",
        product_serial="S1234567890",
        product_uuid="4C4C4544-0042-3510-8052-B4C04F4B4E32",
        product_sku="",
        product_family="SMC X13",
        board_vendor="Supermicro",
        board_name="X13DEG-OAD",
        chassis_type="23",
        bios_vendor="American Megatrends International, LLC.",
        bios_version="2.1",
        bios_date="03/15/2024",
    )
    tree.write("/proc/cmdline", cmdline)
    tree.write("/proc/sys/kernel/hostname", "gpu-node-07")
    return tree


def test_dmi_identity_and_firmware(tmp_path):
    _server(tmp_path)
    root = Root(str(tmp_path))
    info = read_system(root)
    assert info["vendor"] == "Supermicro"
    assert info["product"] == "SYS-821GE-TNHR"
    assert info["serial"] == "S1234567890"
    assert info["uuid"] == "4c4c4544-0042-3510-8052-b4c04f4b4e32"
    assert info["sku"] is None  # empty attribute
    assert info["family"] == "SMC X13"
    assert info["board_product"] == "X13DEG-OAD"
    assert info["chassis_type"] == 23
    assert info["firmware"] == {
        "vendor": "American Megatrends International, LLC.",
        "version": "2.1",
        "date": "03/15/2024",
    }
    assert info["boot_mode"] == "bios"
    assert info["secure_boot"] is None
    assert info["hostname"] == "gpu-node-07"
    assert info["kernel_cmdline"] == "ro quiet"
    assert info["pxe_interface"] is None
    assert info["bmc_address"] is None and info["bmc_v6address"] is None
    assert root.errors == []


@pytest.mark.parametrize(
    ("value", "expected"), [(b"\x06\x00\x00\x00\x01", True), (b"\x06\x00\x00\x00\x00", False)]
)
def test_uefi_secure_boot(tmp_path, value, expected):
    _server(tmp_path).write(SECURE_BOOT_VAR, value)
    root = Root(str(tmp_path))
    info = read_system(root)
    assert info["boot_mode"] == "uefi"
    assert info["secure_boot"] is expected
    assert root.errors == []


def test_uefi_without_secure_boot_variable(tmp_path):
    _server(tmp_path).mkdir("/sys/firmware/efi/efivars")
    root = Root(str(tmp_path))
    info = read_system(root)
    assert (info["boot_mode"], info["secure_boot"]) == ("uefi", None)
    assert root.errors == []


def test_truncated_secure_boot_variable_is_recorded(tmp_path):
    _server(tmp_path).write(SECURE_BOOT_VAR, b"\x06\x00")
    root = Root(str(tmp_path))
    assert read_system(root)["secure_boot"] is None
    assert [p.path for p in root.errors] == [SECURE_BOOT_VAR]


def test_bootif_on_cmdline(tmp_path):
    _server(tmp_path, "ro BOOTIF=01-0C-42-A1-03-E2-EA ip=dhcp")
    assert read_system(Root(str(tmp_path)))["pxe_interface"] == "0c:42:a1:03:e2:ea"


def test_garbage_bootif_is_recorded(tmp_path):
    _server(tmp_path, "ro BOOTIF=01-zz-42 quiet")
    root = Root(str(tmp_path))
    assert read_system(root)["pxe_interface"] is None
    assert len(root.errors) == 1
    assert root.errors[0].path == "/proc/cmdline"
    assert "BOOTIF" in root.errors[0].error


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("01-aa-bb-cc-dd-ee-ff", "aa:bb:cc:dd:ee:ff"),
        ("AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff"),
        ("aa-bb-cc-dd-ee-ff", None),
        ("01-aa-bb-cc-dd-ee-ff-00", None),
        ("06-aa-bb-cc-dd-ee-ff", None),
        ("01-aa-bb-cc-dd-ee", None),
        ("", None),
    ],
)
def test_parse_bootif(value, expected):
    assert parse_bootif(value) == expected


def test_hostname_falls_back_to_etc_hostname(tmp_path):
    tree = _server(tmp_path)
    os.unlink(tree.host("/proc/sys/kernel/hostname"))
    tree.write("/etc/hostname", "node-a.example.org")
    assert read_system(Root(str(tmp_path)))["hostname"] == "node-a.example.org"


def test_no_dmi_is_one_recorded_problem(tmp_path):
    Tree(tmp_path).write("/proc/cmdline", "quiet").write("/proc/sys/kernel/hostname", "vm")
    root = Root(str(tmp_path))
    info = read_system(root)
    assert info["vendor"] is None and info["uuid"] is None and info["chassis_type"] is None
    assert [p.path for p in root.errors] == [DMI]


def test_garbled_chassis_type_is_recorded(tmp_path):
    _server(tmp_path).write(f"{DMI}/chassis_type", "rack")
    root = Root(str(tmp_path))
    assert read_system(root)["chassis_type"] is None
    assert [p.path for p in root.errors] == [f"{DMI}/chassis_type"]


def test_hgx_h100_fixture():
    root = fixture_root("hgx-h100")
    info = read_system(root)
    assert (info["vendor"], info["product"], info["serial"]) == (
        "Supermicro",
        "SYS-821GE-TNHR",
        "S454857X3A12345",
    )
    assert info["uuid"] == "9a5b2c00-1d2e-11ee-8000-3cecef123456"
    assert (info["board_vendor"], info["board_product"], info["chassis_type"]) == (
        "Supermicro",
        "X13DEG-OAD",
        23,
    )
    assert info["firmware"] == {
        "vendor": "American Megatrends International, LLC.",
        "version": "2.1",
        "date": "01/16/2024",
    }
    assert info["boot_mode"] == "uefi"
    assert info["pxe_interface"] == "a0:88:c2:4e:3f:10"
    assert info["hostname"] == "gpu-node-01"
    assert "BOOTIF=01-a0-88-c2-4e-3f-10" in info["kernel_cmdline"]


def test_storage_sas_fixture_boots_bios_without_bootif():
    root = fixture_root("storage-sas")
    info = read_system(root)
    assert (info["vendor"], info["serial"], info["hostname"]) == ("Lenovo", "J30A1B2C", "stor-01")
    assert (info["boot_mode"], info["secure_boot"], info["pxe_interface"]) == ("bios", None, None)
    assert info["firmware"]["version"] == "AFE126C-2.10"


def test_vm_fixture():
    root = fixture_root("vm")
    info = read_system(root)
    assert (info["vendor"], info["product"], info["version"]) == (
        "QEMU",
        "Standard PC (Q35 + ICH9, 2009)",
        "pc-q35-8.2",
    )
    assert (info["serial"], info["board_vendor"], info["chassis_type"]) == (None, None, 1)
    assert info["uuid"] == "6c0b9a3e-4f1d-4b7a-9e2c-5d8f0a1b2c3d"
    assert info["firmware"]["vendor"] == "SeaBIOS"
    assert (info["boot_mode"], info["pxe_interface"], info["hostname"]) == (
        "bios",
        "52:54:00:12:34:56",
        "kiln-vm-01",
    )
    assert root.errors == []


def test_host_kvm_capture_has_no_dmi():
    root = fixture_root("host-kvm")
    info = read_system(root)
    assert (info["vendor"], info["uuid"], info["boot_mode"], info["hostname"]) == (None, None, "bios", "vm")
    assert info["kernel_cmdline"].startswith("mitigations=auto")
    assert [p.path for p in root.errors] == [DMI]


def test_non_ascii_digit_chassis_type_is_recorded(tmp_path):
    _server(tmp_path).write(f"{DMI}/chassis_type", "²")
    root = Root(str(tmp_path))
    assert read_system(root)["chassis_type"] is None
    assert [p.path for p in root.errors] == [f"{DMI}/chassis_type"]
