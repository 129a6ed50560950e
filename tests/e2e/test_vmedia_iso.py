"""The boot ISO of redfish-virtual-media boots under both firmwares: qemu (TCG, q35, no network) with
SeaBIOS (ISOLINUX) and with OVMF (GRUB EFI) reaches the kernel with the ISO's command line and
unpacks the ramdisk's initramfs. No lab: one qemu process per firmware, the ISO as its CD."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from agent.conductor.drivers import iso_image
from agent.lab import vms

MARKER = "kiln.iso_test=1"
TIMEOUT = 240


@pytest.fixture(scope="module")
def iso(tmp_path_factory, ramdisk) -> Path:
    """The ramdisk of this checkout as a boot ISO with a marker on its command line."""
    out = tmp_path_factory.mktemp("iso") / "boot.iso"
    return iso_image.build(out, ramdisk.kernel, ramdisk.initramfs, f"console=ttyS0 panic=-1 {MARKER}")


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_iso_boots_the_kernel_and_initramfs(iso, firmware, tmp_path) -> None:
    serial = tmp_path / "serial.log"
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "2048", "-display", "none",
            "-no-reboot", "-net", "none", "-cdrom", str(iso), "-boot", "d",
            "-serial", f"file:{serial}"]  # fmt: skip
    if firmware == "uefi":
        shutil.copyfile(vms.OVMF_VARS, tmp_path / "vars.fd")
        argv += ["-drive", f"if=pflash,format=raw,readonly=on,file={vms.OVMF_CODE}",
                 "-drive", f"if=pflash,format=raw,file={tmp_path / 'vars.fd'}"]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    text = ""
    try:
        while time.monotonic() - started < TIMEOUT and proc.poll() is None:
            text = serial.read_text(errors="replace") if serial.exists() else ""
            if "Freeing initrd memory" in text:
                break
            time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    print(f"{firmware}: initramfs unpacked {time.monotonic() - started:.1f} s after qemu started")
    command_line = re.search(r"Command line: (.*)", text)
    assert command_line, f"{firmware}: no kernel started within {TIMEOUT} s; serial output:\n{text[-2000:]}"
    assert MARKER in command_line.group(1)
    assert "Freeing initrd memory" in text, text[-2000:]
