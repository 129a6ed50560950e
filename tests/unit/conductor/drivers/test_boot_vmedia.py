"""The redfish-virtual-media boot interface: the boot ISO (xorriso, ISOLINUX, GRUB EFI) and validation."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import pytest

from agent.common import exception
from agent.conductor.drivers import base, iso_image, pxe, vmedia_boot

MAC = "52:54:00:aa:cc:01"
REPO = Path(__file__).resolve().parents[4]


def _el_torito(iso: Path) -> str:
    out = subprocess.run(
        ["xorriso", "-indev", str(iso), "-report_el_torito", "plain"], capture_output=True, text=True
    )
    return out.stdout + out.stderr


def _extract(iso: Path, path: str, target: Path) -> Path:
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", path, str(target)],
        capture_output=True,
        check=True,
    )
    return target


@pytest.fixture
def images(tmp_path) -> tuple[Path, Path]:
    kernel = tmp_path / "src" / "kernel"
    kernel.parent.mkdir()
    kernel.write_bytes(b"KERNEL" * 50000)
    initramfs = tmp_path / "src" / "initramfs"
    initramfs.write_bytes(b"INITRD" * 80000)
    return kernel, initramfs


def test_iso_boots_bios_and_uefi_with_the_command_line(tmp_path, images) -> None:
    kernel, initramfs = images
    cmdline = "console=ttyS0 kiln.node_uuid=abc kiln.config_url=http://10.9.0.1:8088/agent.conf"
    iso = iso_image.build(tmp_path / "out" / "boot.iso", kernel, initramfs, cmdline)
    report = _el_torito(iso)
    assert "/isolinux/isolinux.bin" in report and "/efiboot.img" in report
    assert any(" BIOS " in line for line in report.splitlines() if line.startswith("El Torito boot img"))
    assert any(" UEFI " in line for line in report.splitlines() if line.startswith("El Torito boot img"))
    assert _extract(iso, "/vmlinuz", tmp_path / "k").read_bytes() == kernel.read_bytes()
    assert _extract(iso, "/initrd", tmp_path / "i").read_bytes() == initramfs.read_bytes()
    config = _extract(iso, "/isolinux/isolinux.cfg", tmp_path / "cfg").read_text()
    assert f"append initrd=/initrd {cmdline}\n" in config
    # the GRUB EFI image sits in a FAT image, its config (with the same command line) inside it
    efi = _extract(iso, "/efiboot.img", tmp_path / "efiboot.img")
    listing = subprocess.run(["mdir", "-i", str(efi), "::/EFI/BOOT"], capture_output=True, text=True).stdout
    assert "BOOTX64" in listing
    loader = tmp_path / "BOOTX64.EFI"
    subprocess.run(["mcopy", "-i", str(efi), "::/EFI/BOOT/BOOTX64.EFI", str(loader)], check=True)
    assert loader.read_bytes()[:2] == b"MZ"  # a PE image
    assert f"linux /vmlinuz {cmdline}".encode() in loader.read_bytes()
    assert not [p for p in iso.parent.iterdir() if p.name != "boot.iso"]  # no work files left


def test_iso_bios_only_has_no_efi_entry(tmp_path, images) -> None:
    iso = iso_image.build(tmp_path / "boot.iso", *images, "quiet", boot_modes=("bios",))
    report = _el_torito(iso)
    assert "/isolinux/isolinux.bin" in report and "efiboot.img" not in report


def test_iso_refuses_bad_input(tmp_path, images, monkeypatch) -> None:
    with pytest.raises(iso_image.IsoBuildError, match="each must be bios or uefi"):
        iso_image.build(tmp_path / "boot.iso", *images, "quiet", boot_modes=("efi",))
    with pytest.raises(iso_image.IsoBuildError, match="must be one line"):
        iso_image.build(tmp_path / "boot.iso", *images, "a\nb")
    with pytest.raises(iso_image.IsoBuildError, match="only http, https and file URLs"):
        iso_image.fetch("tftp://10.9.0.1/kernel", tmp_path / "k")
    with pytest.raises(iso_image.IsoBuildError, match="Fetching file:///nonexistent/kernel"):
        iso_image.fetch("file:///nonexistent/kernel", tmp_path / "k")
    monkeypatch.setenv("PATH", str(tmp_path))  # no xorriso, no grub-mkstandalone on this PATH
    with pytest.raises(iso_image.IsoBuildError, match=r"xorriso \(apt-get install xorriso\)"):
        iso_image.build(tmp_path / "boot.iso", *images, "quiet")
    assert "grub-mkstandalone (apt-get install grub-common)" in iso_image.missing_tools(("uefi",))
    assert not (tmp_path / "boot.iso").exists()


@pytest.fixture
def redfish_node(make_node, images):
    kernel, initramfs = images
    info = {
        "redfish_address": "http://127.0.0.1:8000",
        "redfish_system_id": "/redfish/v1/Systems/x",
        "deploy_kernel": f"file://{kernel}",
        "deploy_ramdisk": f"file://{initramfs}",
    }
    return make_node("redfish", info, [(MAC, True)])


def test_validate_accepts_redfish_and_names_what_is_wrong(redfish_node, make_node, acquire, boot_dirs):
    boot = vmedia_boot.RedfishVirtualMediaBoot()
    with acquire(redfish_node) as task:
        boot.validate(task)
    fake = make_node("fake-hardware", {}, [(MAC.replace("01", "02"), True)])
    with acquire(fake) as task, pytest.raises(exception.InvalidParameterValue) as err:
        boot.validate(task)
    assert f"Node {fake}: the redfish-virtual-media boot interface needs the redfish management" in str(
        err.value
    )
    bad_mode = make_node("redfish", {"redfish_address": "http://127.0.0.1:8000"}, [],
                         properties={"capabilities": "boot_mode:legacy"})  # fmt: skip
    with acquire(bad_mode) as task, pytest.raises(exception.InvalidParameterValue, match="'legacy'"):
        boot.validate(task)


def test_boot_files_are_the_iso_and_no_boot_options(redfish_node, acquire, boot_dirs):
    boot = vmedia_boot.RedfishVirtualMediaBoot()
    with acquire(redfish_node) as task:
        boot._write_boot_files(task, redfish_node, [MAC], {"ipa-debug": "1"})
    iso = boot_dirs["http_root"] / redfish_node / "boot.iso"
    assert {p.name for p in boot_dirs["http_root"].rglob("*")} == {redfish_node, "boot.iso"}
    config = _extract(iso, "/isolinux/isolinux.cfg", iso.parent.parent / "cfg").read_text()
    assert f"kiln.node_uuid={redfish_node} " in config
    assert "kiln.config_url=http://10.9.0.1:8088/agent.conf" in config and "ipa-debug=1" in config
    assert vmedia_boot.iso_url(redfish_node) == f"http://10.9.0.1:8088/{redfish_node}/boot.iso"
    assert boot.dhcp_options(redfish_node, [MAC]) == []
    assert not list(boot_dirs["tftp_root"].iterdir())  # nothing for TFTP
    boot._remove_boot_files(redfish_node, [MAC])
    assert not (boot_dirs["http_root"] / redfish_node).exists()


def test_the_ramdisk_boots_from_the_cd_and_the_entry_point_names_the_class():
    assert vmedia_boot.RedfishVirtualMediaBoot.ramdisk_boot_device == base.CDROM
    assert pxe.PXEBoot.ramdisk_boot_device == base.PXE
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    points = dict(
        line.split(" = ") for line in cfg["entry_points"]["kiln.hardware.interfaces.boot"].split("\n") if line
    )
    assert points["redfish-virtual-media"] == "agent.conductor.drivers.vmedia_boot:RedfishVirtualMediaBoot"
