"""Build Kiln's test OS: a whole-disk qcow2 (MBR, GRUB for BIOS and UEFI, cloud-init on ConfigDrive).

No loop device and no mount: the Debian tree comes from mmdebstrap (cached by packages), the root
file system is made from it with ``mkfs.ext4 -d``, the ESP with mkfs.vfat and mtools, and GRUB's
images with the tree's own ``grub-mkimage``; the BIOS boot sector and core image are put in the
MBR gap by offset. The result is cached in ~/.cache/kiln under a key of everything it is made of.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2

from agent.ramdisk import rootfs
from agent.ramdisk.builder import default_cache
from agent.ramdisk.rootfs import BuildError, run

BUILDER_VERSION = "1"
IMAGE = "kiln-test-os.qcow2"
FILES = Path(__file__).resolve().parent / "files"
SUITE = rootfs.SUITE
ROOT_LABEL = "kiln-root"
ESP_LABEL = "KILN-ESP"
MIB = 1024 * 1024
ESP_MIB = 32
# no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check fails and it panics
CMDLINE = "console=tty0 console=ttyS0,115200n8 net.ifnames=0 no_timer_check"
PACKAGES = (
    "systemd-sysv",
    "udev",
    "kmod",
    "iproute2",
    "ifupdown",  # cloud-init renders network_data.json to /etc/network/interfaces (its eni renderer)
    "linux-image-cloud-amd64",  # virtio and NVMe, few physical drivers: small, and all a VM needs
    "initramfs-tools",
    "grub-pc-bin",
    "grub-efi-amd64-bin",
    "cloud-init",
    "ifenslave",  # cloud-init's eni rendering of a network_data.json bond needs ifupdown's bond hooks
    "iputils-ping",  # the lab's tests probe the tenant networks from the serial console
    "arping",
)
EXCLUDED_PATHS = rootfs.EXCLUDED_PATHS
GRUB_MODULES = ("part_msdos", "ext2", "fat", "normal", "configfile", "linux", "search", "search_label",
                "serial", "terminal", "echo", "test", "boot")  # fmt: skip
TOOLS = (("mkfs.ext4", "e2fsprogs"), ("mkfs.vfat", "dosfstools"), ("mcopy", "mtools"), ("sfdisk", "fdisk"),
         ("qemu-img", "qemu-utils"), ("chroot", "coreutils"))  # fmt: skip
GRUB_TARGETS = {"bios": ("i386-pc", ("biosdisk",)), "uefi": ("x86_64-efi", ("efi_gop", "all_video"))}


@dataclass
class Result:
    """What a build produced."""

    image: Path
    sha256: str
    cached: bool
    seconds: float
    key: str

    @property
    def size(self) -> int:
        """The qcow2 file's size in bytes."""
        return self.image.stat().st_size


def cache_key() -> str:
    """The hash of everything the image is made of: builder, suite, packages, files, kernel command line."""
    digest = hashlib.sha256()
    for part in (BUILDER_VERSION, SUITE, CMDLINE, ROOT_LABEL, str(ESP_MIB), *PACKAGES, *EXCLUDED_PATHS,
                 *GRUB_MODULES):  # fmt: skip
        digest.update(part.encode() + b"\0")
    for path in sorted(FILES.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def debian_tree(cache: Path, mirror: str | None = None) -> Path:
    """The mmdebstrap tarball of the image's packages (no recommends), kept in ``cache``."""
    text = "\n".join([SUITE, *PACKAGES, *EXCLUDED_PATHS])
    tarball = cache / f"image-rootfs-{SUITE}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.tar"
    if tarball.exists():
        return tarball
    if not shutil.which("mmdebstrap"):
        raise BuildError("mmdebstrap is not installed: apt-get install -y mmdebstrap")
    partial = tarball.with_suffix(".partial.tar")
    argv = ["mmdebstrap", "--variant=minbase", '--aptopt=APT::Install-Recommends "false"']
    argv += ["--include=" + ",".join(PACKAGES)]
    argv += [f"--dpkgopt=path-exclude={path}" for path in EXCLUDED_PATHS]
    argv += [SUITE, str(partial)] + ([mirror] if mirror else [])
    run(argv, "mmdebstrap (Debian packages of the test OS image)")
    os.replace(partial, tarball)
    return tarball


def grub_cfg(version: str) -> str:
    """/boot/grub/grub.cfg: boot the one kernel at once, root by label, console on ttyS0."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(FILES), autoescape=False, keep_trailing_newline=True
    )
    return env.get_template("grub.cfg.j2").render(
        suite=SUITE, version=version, label=ROOT_LABEL, cmdline=CMDLINE
    )


def root_size(used_bytes: int) -> int:
    """The root partition for a tree of ``used_bytes``: a third more plus 256 MiB, whole MiB."""
    want = used_bytes + used_bytes // 3 + 256 * MIB
    return -(-want // MIB) * MIB


def partition_script(esp_bytes: int, root_bytes: int) -> str:
    """sfdisk input: MBR, a bootable ESP at 1 MiB (type ef), the root file system after it (type 83)."""
    esp_start = MIB // 512
    root_start = esp_start + esp_bytes // 512
    return (
        "label: dos\n"
        f"start={esp_start}, size={esp_bytes // 512}, type=ef, bootable\n"
        f"start={root_start}, size={root_bytes // 512}, type=83\n"
    )


def _configure(root: Path, version: str) -> None:
    def put(name: str, rel: str, mode: int = 0o644, text: str | None = None) -> None:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text if text is not None else (FILES / name).read_text())
        os.chmod(target, mode)

    put("99-kiln.cfg", "etc/cloud/cloud.cfg.d/99-kiln.cfg")
    put("kiln-report", "usr/local/sbin/kiln-report", 0o755)
    put("kiln-report.service", "etc/systemd/system/kiln-report.service")
    put("serial-autologin.conf", "etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf")
    put("", "etc/fstab", text=f"LABEL={ROOT_LABEL} / ext4 defaults,errors=remount-ro 0 1\n")
    put(
        "",
        "etc/network/interfaces",
        text="auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n",
    )
    put("", "boot/grub/grub.cfg", text=grub_cfg(version))
    for name in ("machine-id", "hostname"):
        (root / "etc" / name).write_text("")  # a machine id per machine; cloud-init names the host
    for rel in ("var/lib/apt/lists", "var/cache/apt"):
        shutil.rmtree(root / rel, ignore_errors=True)
    rootfs.chroot(root, ["systemctl", "enable", "kiln-report.service"], "enabling kiln-report")
    rootfs.chroot(root, ["systemctl", "mask", *rootfs.MASKED], "masking timers the test OS has no use for")


def _grub_images(root: Path, work: Path) -> dict[str, Path]:
    """core.img (BIOS) and BOOTX64.EFI made by the tree's grub-mkimage, with early.cfg embedded."""
    shutil.copyfile(FILES / "early.cfg", root / "tmp" / "early.cfg")
    images = {}
    for firmware, (target, extra) in GRUB_TARGETS.items():
        out = f"/tmp/grub-{firmware}.img"
        argv = ["grub-mkimage", "-O", target, "-p", "/boot/grub", "-c", "/tmp/early.cfg", "-o", out]
        rootfs.chroot(root, argv + list(GRUB_MODULES) + list(extra), f"grub-mkimage for {target}")
        images[firmware] = work / f"grub-{firmware}.img"
        shutil.move(root / out.lstrip("/"), images[firmware])
        shutil.copytree(root / "usr/lib/grub" / target, root / "boot/grub" / target, dirs_exist_ok=True)
    os.unlink(root / "tmp" / "early.cfg")
    return images


def _esp(work: Path, efi: Path) -> Path:
    esp = work / "esp.img"
    run(["mkfs.vfat", "-n", ESP_LABEL, "-C", str(esp), str(ESP_MIB * 1024)], "mkfs.vfat of the ESP")
    run(["mmd", "-i", str(esp), "::/EFI", "::/EFI/BOOT"], "making EFI/BOOT on the ESP (mtools)")
    run(["mcopy", "-i", str(esp), str(efi), "::/EFI/BOOT/BOOTX64.EFI"], "copying GRUB onto the ESP (mtools)")
    return esp


def _used_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                total += os.lstat(path).st_size
    return total


def _write_at(disk: Path, offset: int, source: Path, limit: int | None = None) -> None:
    with open(source, "rb") as src, open(disk, "r+b") as dst:
        data = src.read() if limit is None else src.read(limit)
        dst.seek(offset)
        dst.write(data)


def assemble(work: Path, root: Path, images: dict[str, Path], boot_img: Path) -> Path:
    """The raw disk: partition table, GRUB's boot sector and core image in the gap, ESP and root."""
    esp = _esp(work, images["uefi"])
    root_bytes = root_size(_used_bytes(root))
    root_img = work / "root.img"
    run(["mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-d", str(root), str(root_img), f"{root_bytes // 1024}k"],
        "mkfs.ext4 -d of the root file system")  # fmt: skip
    core = images["bios"]
    if core.stat().st_size > MIB - 512:
        raise BuildError(f"GRUB's core image is {core.stat().st_size} B: it does not fit the 1 MiB MBR gap")
    disk = work / "disk.raw"
    esp_bytes = ESP_MIB * MIB
    with open(disk, "wb") as f:
        f.truncate(MIB + esp_bytes + root_bytes)
    run(
        ["sfdisk", "--quiet", str(disk)],
        "partitioning the image",
        input=partition_script(esp_bytes, root_bytes),
    )
    _write_at(disk, 0, boot_img, 440)  # boot code only: the partition table from byte 446 stays
    _write_at(disk, 512, core)  # boot.img loads sector 1; core.img's own blocklist covers the rest
    _write_at(disk, MIB, esp)
    _write_at(disk, MIB + esp_bytes, root_img)
    return disk


def _build_into(entry: Path, cache: Path, mirror: str | None) -> None:
    tarball = debian_tree(cache, mirror)
    with tempfile.TemporaryDirectory(prefix="kiln-image-", dir=cache) as tmp:
        work = Path(tmp)
        root = work / "root"
        rootfs.unpack(tarball, root)
        version = rootfs.kernel_version(root)
        _configure(root, version)
        images = _grub_images(root, work)
        boot_img = work / "boot.img"
        shutil.copyfile(root / "usr/lib/grub/i386-pc/boot.img", boot_img)
        disk = assemble(work, root, images, boot_img)
        entry.mkdir(parents=True, exist_ok=True)
        partial = entry / (IMAGE + ".partial")
        run(
            ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(disk), str(partial)],
            "qemu-img convert",
        )
        os.replace(partial, entry / IMAGE)
        (entry / "build.json").write_text(json.dumps({"kernel": version, "packages": PACKAGES}, indent=1))


def sha256_of(path: Path) -> str:
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def build(output: Path, cache: Path | None = None, mirror: str | None = None, force: bool = False) -> Result:
    """Build (or take from the cache) the test OS image; put it and its .sha256 file into ``output``."""
    if os.geteuid() != 0:
        raise BuildError("kiln-image build needs root (mmdebstrap, chroot, files owned by root)")
    for tool, package in TOOLS:
        if not shutil.which(tool):
            raise BuildError(f"{tool} is not installed: apt-get install -y {package}")
    started = time.monotonic()
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    key = cache_key()
    entry = cache / f"image-{key}"
    cached = (entry / IMAGE).exists() and not force
    if not cached:
        shutil.rmtree(entry, ignore_errors=True)
        try:
            _build_into(entry, cache, mirror)
        except BaseException:
            shutil.rmtree(entry, ignore_errors=True)
            raise
    output.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(entry / IMAGE, output / IMAGE)
    digest = sha256_of(output / IMAGE)
    (output / (IMAGE + ".sha256")).write_text(f"{digest}  {IMAGE}\n")
    return Result(output / IMAGE, digest, cached, time.monotonic() - started, key)
