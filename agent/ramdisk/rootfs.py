"""The ramdisk's root file system: a Debian tree from mmdebstrap, cached, stripped and given the agent."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

SUITE = "bookworm"
PYTHON = "python3.11"
"""Debian 12's Python: the wheels installed into the ramdisk are chosen for it."""
PACKAGES = (
    "python3",
    "systemd-sysv",
    "udev",
    "kmod",
    "iproute2",
    "ca-certificates",
    "linux-image-amd64",  # the physical NIC drivers; linux-image-cloud-amd64 lacks most
    # what the agent's deploy and clean steps run
    "fdisk",
    "dosfstools",
    "mtools",
    "xorriso",  # the configdrive ISO, when the configdrive is given as an object
    "qemu-utils",
    "nvme-cli",
)
EXCLUDED_PATHS = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
    "/usr/share/bash-completion/*",
    "/usr/share/zsh/*",
)
STRIPPED = (
    "boot",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/log",
    "usr/share/initramfs-tools",
    "usr/lib/udev/hwdb.d",  # compiled into hwdb.bin
    "usr/share/i18n",
    "usr/include",
    "usr/lib/x86_64-linux-gnu/perl",
    "usr/share/perl",
    "usr/lib/firmware",
    "etc/hostname",
    "etc/resolv.conf",
    # at boot the cpio is unpacked at TCG speed (~25 MB/s): what nothing in the ramdisk reads goes
    "usr/lib/udev/hwdb.bin",  # vendor/model names from the hardware database; the agent has its own
    "usr/lib/x86_64-linux-gnu/gconv",  # glibc iconv charsets; Python has its own codecs
    "usr/lib/x86_64-linux-gnu/perl-base",  # perl-base serves dpkg's scripts, never run here
    "usr/bin/perl",
    "usr/bin/qemu-nbd",
    "usr/bin/qemu-io",
    "var/lib/dpkg/info",
    "var/cache/debconf",
)
MASKED = (
    # timers and jobs of an installed system, and NVMe-oF autoconnect (no nvme-fabrics module here)
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "getty-static.service",
    "nvmf-autoconnect.service",
)
DIST_PACKAGES = f"usr/local/lib/{PYTHON}/dist-packages"
# Debian 12 has glibc 2.36: every manylinux wheel up to it fits (pip does not expand the tag itself).
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]


class BuildError(RuntimeError):
    """A step of the ramdisk build failed; the message names the step and what to do."""


def run(argv: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """Run ``argv``; BuildError naming ``what`` and the tail of its output when it fails."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    except FileNotFoundError as exc:
        raise BuildError(f"{what}: {argv[0]} is not installed ({exc}); see README 'The lab'") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-15:]
        raise BuildError(
            f"{what} failed (exit {proc.returncode}): {' '.join(argv[:4])} ...\n" + "\n".join(tail)
        )
    return proc


def rootfs_key() -> str:
    """The cache key of the Debian tree: suite, packages and excluded paths."""
    text = "\n".join([SUITE, *PACKAGES, *EXCLUDED_PATHS])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def debian_tree(cache: Path, mirror: str | None = None) -> Path:
    """The mmdebstrap tarball of the ramdisk's packages, built once per key and kept in ``cache``."""
    tarball = cache / f"rootfs-{SUITE}-{rootfs_key()}.tar"
    if tarball.exists():
        return tarball
    if not shutil.which("mmdebstrap"):
        raise BuildError("mmdebstrap is not installed: apt-get install -y mmdebstrap")
    cache.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial.tar")
    argv = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES)]
    argv += [f"--dpkgopt=path-exclude={path}" for path in EXCLUDED_PATHS]
    argv += [SUITE, str(partial)] + ([mirror] if mirror else [])
    run(argv, "mmdebstrap (Debian packages of the ramdisk)")
    os.replace(partial, tarball)
    return tarball


def unpack(tarball: Path, root: Path) -> None:
    """Extract the Debian tree into ``root`` keeping owners and modes."""
    root.mkdir(parents=True)
    run(["tar", "-x", "-f", str(tarball), "-C", str(root), "--numeric-owner"], "extracting the Debian tree")


def kernel_version(root: Path) -> str:
    """The version of the one kernel in ``root``."""
    versions = sorted(os.listdir(root / "usr" / "lib" / "modules"))
    if len(versions) != 1:
        raise BuildError(f"expected one kernel under {root}/usr/lib/modules, found {versions}")
    return versions[0]


def take_kernel(root: Path, version: str, target: Path) -> None:
    """Copy the kernel image out of ``root``'s /boot to ``target``."""
    shutil.copyfile(root / "boot" / f"vmlinuz-{version}", target)


def strip(root: Path) -> None:
    """Remove what the agent never uses: /boot, apt's lists, hwdb sources, headers, firmware, logs."""
    for rel in STRIPPED:
        path = root / rel
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
    (root / "var" / "log").mkdir(exist_ok=True)


def agent_requirements(repo: Path) -> list[str]:
    """The agent's requirements: the '# node agent' block of requirements.txt, and pbr."""
    wanted, block = [], ""
    for line in (repo / "requirements.txt").read_text().splitlines():
        text = line.strip()
        if text.startswith("#"):
            block = text
            continue
        if text and (text.startswith("pbr") or block.startswith("# node agent")):
            wanted.append(text)
    if len(wanted) < 2:
        raise BuildError(f"found no '# node agent' block in {repo}/requirements.txt")
    return wanted


def build_wheel(repo: Path, target: Path) -> Path:
    """The kiln wheel of the checkout ``repo`` (pip wheel --no-deps) in ``target``."""
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(target), str(repo)], "pip wheel")
    wheels = sorted(target.glob("kiln-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"pip wheel left {len(wheels)} kiln wheels in {target}, expected one")
    return wheels[0]


def install_agent(root: Path, wheel: Path, requirements: list[str]) -> None:
    """pip-install the agent's requirements, then the kiln wheel alone, for Debian's Python into the tree."""
    target = root / DIST_PACKAGES
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-warn-script-location",
        "--target",
        str(target),
    ]
    argv += [
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    for platform in PLATFORMS:
        argv += ["--platform", platform]
    run(
        argv + ["--only-binary=:all:", *requirements],
        "pip install of the agent's requirements into the ramdisk",
    )
    # kiln's own metadata requires the conductor's and the API's libraries too: the agent needs none of them
    run(argv + ["--no-deps", "--upgrade", str(wheel)], "pip install of the kiln wheel into the ramdisk")
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts name the build host's Python


def chroot(root: Path, argv: list[str], what: str) -> subprocess.CompletedProcess:
    """Run ``argv`` inside the tree (chroot, no services)."""
    return run(
        ["chroot", str(root), *argv], what, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
    )
