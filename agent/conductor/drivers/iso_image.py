"""A bootable ISO of the deploy ramdisk: ISOLINUX for BIOS, a standalone GRUB EFI image for UEFI.

The ISO holds the kernel, the initramfs and the kernel command line (the agent's config or transport
URL among it), so a node that boots it from virtual media needs no PXE, TFTP or iPXE. Built with
xorriso (``xorriso -as mkisofs``), as Ironic's ``images.create_boot_iso`` does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from agent.common import exception

ISOLINUX_BIN = "/usr/lib/ISOLINUX/isolinux.bin"
ISOHDPFX_BIN = "/usr/lib/ISOLINUX/isohdpfx.bin"
LDLINUX_C32 = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
GRUB_EFI_MODULES = "/usr/lib/grub/x86_64-efi"
VOLUME_ID = "KILN_AGENT"
KERNEL = "vmlinuz"
INITRAMFS = "initrd"
#: GRUB modules the standalone EFI image carries (the rest of GRUB stays out: a smaller image).
GRUB_MODULES = "linux normal iso9660 search search_fs_file configfile echo all_video part_gpt part_msdos"

#: What each boot mode needs on the conductor's host: (path or program, the Debian package).
NEEDS: dict[str, list[tuple[str, str]]] = {
    "bios": [("xorriso", "xorriso"), (ISOLINUX_BIN, "isolinux"), (LDLINUX_C32, "syslinux-common")],
    "uefi": [
        ("xorriso", "xorriso"),
        ("grub-mkstandalone", "grub-common"),
        (GRUB_EFI_MODULES, "grub-efi-amd64-bin"),
        ("mkfs.vfat", "dosfstools"),
        ("mmd", "mtools"),
        ("mcopy", "mtools"),
    ],
}


class IsoBuildError(exception.KilnException):
    """Building the boot ISO failed (a missing tool, an unreadable image, xorriso's error)."""


def missing_tools(boot_modes: tuple[str, ...] = ("bios", "uefi")) -> list[str]:
    """What the conductor's host lacks to build an ISO for ``boot_modes``, as 'thing (package)'."""
    missing = []
    for mode in boot_modes:
        for thing, package in NEEDS[mode]:
            found = os.path.exists(thing) if thing.startswith("/") else shutil.which(thing)
            entry = f"{thing} (apt-get install {package})"
            if not found and entry not in missing:
                missing.append(entry)
    return missing


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        raise IsoBuildError(f"{what} failed (exit {proc.returncode}): {detail}")


def fetch(url: str, target: Path, timeout: float = 60) -> Path:
    """Copy ``url`` (http(s), file:// or a local path) to ``target``; IsoBuildError naming the URL."""
    parsed = urllib.parse.urlsplit(url)
    try:
        if parsed.scheme in ("http", "https"):
            with urllib.request.urlopen(url, timeout=timeout) as answer, open(target, "wb") as out:
                shutil.copyfileobj(answer, out, 1 << 20)
        elif parsed.scheme in ("", "file"):
            shutil.copyfile(urllib.parse.unquote(parsed.path) if parsed.scheme else url, target)
        else:
            raise IsoBuildError(f"Cannot fetch {url} for the boot ISO: only http, https and file URLs work.")
    except OSError as exc:
        raise IsoBuildError(f"Fetching {url} for the boot ISO failed: {exc}") from exc
    return target


def isolinux_config(cmdline: str) -> str:
    """ISOLINUX's config: boot the ramdisk at once with ``cmdline``."""
    return (
        "default kiln\nprompt 0\ntimeout 0\n"
        f"label kiln\n  kernel /{KERNEL}\n  append initrd=/{INITRAMFS} {cmdline}\n"
    )


def grub_config(cmdline: str) -> str:
    """The GRUB config embedded in the EFI image: find the ISO by its kernel, boot the ramdisk."""
    return (
        "set timeout=0\n"
        f"search --no-floppy --file --set=root /{KERNEL}\n"
        f"linux /{KERNEL} {cmdline}\n"
        f"initrd /{INITRAMFS}\n"
        "boot\n"
    )


def _efi_image(staging: Path, work: Path, cmdline: str) -> None:
    """staging/efiboot.img: a FAT image holding EFI/BOOT/BOOTX64.EFI (GRUB with its config inside)."""
    cfg = work / "grub.cfg"
    cfg.write_text(grub_config(cmdline))
    efi = work / "BOOTX64.EFI"
    _run(
        ["grub-mkstandalone", "-O", "x86_64-efi", "-d", GRUB_EFI_MODULES, "-o", str(efi),
         f"--modules={GRUB_MODULES}", f"--install-modules={GRUB_MODULES}", "--locales=", "--fonts=",
         "--themes=", f"boot/grub/grub.cfg={cfg}"],
        "grub-mkstandalone (the UEFI boot loader)",
    )  # fmt: skip
    size_kib = max(1024, (efi.stat().st_size // 1024) + 512)
    img = staging / "efiboot.img"
    _run(["mkfs.vfat", "-C", "-n", "KILN_EFI", str(img), str(size_kib)], "mkfs.vfat (the EFI boot image)")
    env_img = f"-i{img}"
    _run(["mmd", env_img, "::/EFI", "::/EFI/BOOT"], "mmd (the EFI boot image)")
    _run(["mcopy", env_img, str(efi), "::/EFI/BOOT/BOOTX64.EFI"], "mcopy (the EFI boot image)")


def build(
    output: Path,
    kernel: Path,
    initramfs: Path,
    cmdline: str,
    boot_modes: tuple[str, ...] = ("bios", "uefi"),
    work_dir: Path | None = None,
) -> Path:
    """Write a bootable ISO of ``kernel`` + ``initramfs`` + ``cmdline`` to ``output``, atomically.

    ``boot_modes`` chooses the El Torito entries: ISOLINUX for bios, GRUB EFI for uefi (both make a
    hybrid ISO that boots either way). The work happens in ``work_dir`` (default: beside ``output``;
    it must share ``output``'s filesystem). IsoBuildError says what is missing or what failed.
    """
    if not boot_modes or any(mode not in NEEDS for mode in boot_modes):
        raise IsoBuildError(f"Boot modes {boot_modes!r}: each must be bios or uefi.")
    missing = missing_tools(boot_modes)
    if missing:
        raise IsoBuildError(
            f"Cannot build the boot ISO, missing on the conductor's host: {', '.join(missing)}"
        )
    if "\n" in cmdline:
        raise IsoBuildError("The kernel command line of the boot ISO must be one line.")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".kiln-iso-", dir=work_dir or output.parent) as tmp:
        work = Path(tmp)
        staging = work / "iso"
        staging.mkdir()
        _place(kernel, staging / KERNEL)
        _place(initramfs, staging / INITRAMFS)
        argv = ["xorriso", "-as", "mkisofs", "-quiet", "-o", str(work / "boot.iso"), "-iso-level", "3",
                "-V", VOLUME_ID, "-J", "-R"]  # fmt: skip
        if "bios" in boot_modes:
            (staging / "isolinux").mkdir()
            shutil.copyfile(ISOLINUX_BIN, staging / "isolinux" / "isolinux.bin")
            shutil.copyfile(LDLINUX_C32, staging / "isolinux" / "ldlinux.c32")
            (staging / "isolinux" / "isolinux.cfg").write_text(isolinux_config(cmdline))
            argv += ["-isohybrid-mbr", ISOHDPFX_BIN, "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
                     "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table"]  # fmt: skip
        if "uefi" in boot_modes:
            _efi_image(staging, work, cmdline)
            if "bios" in boot_modes:
                argv.append("-eltorito-alt-boot")
            argv += ["-e", "efiboot.img", "-no-emul-boot", "-isohybrid-gpt-basdat"]
        _run(argv + [str(staging)], "xorriso (the boot ISO)")
        (work / "boot.iso").chmod(0o644)
        os.replace(work / "boot.iso", output)
    return output


def _place(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` when they share a filesystem, else copy it."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
