"""Build Kiln's deploy ramdisk: a kernel and a systemd initramfs (zstd cpio) that runs kiln-agent.

Steps: the kiln wheel of this checkout; the cache key (builder version, packages, modules, the
wheel's files, the agent's requirements, the files put in the tree); a Debian tree from mmdebstrap
(cached apart, by packages); stripped, modules pruned to :data:`modules.WANTED`'s closure; kiln
and its requirements pip-installed for Debian's Python; the agent unit and networkd enabled;
checked (the agent imports, ``systemd-analyze verify`` on the installed unit); packed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from agent.ramdisk import modules, rootfs
from agent.ramdisk.rootfs import BuildError

BUILDER_VERSION = "2"
KERNEL = "kiln-agent.kernel"
INITRAMFS = "kiln-agent.initramfs"
REPO = Path(__file__).resolve().parents[2]
FILES = Path(__file__).resolve().parent / "files"
UNIT = REPO / "etc" / "kiln" / "systemd" / "kiln-agent.service"
ZSTD_LEVEL = 12


@dataclass
class Result:
    """What a build produced and how long it took."""

    kernel: Path
    initramfs: Path
    cached: bool
    seconds: float
    key: str

    @property
    def initramfs_bytes(self) -> int:
        """The compressed initramfs's size."""
        return self.initramfs.stat().st_size


def default_cache() -> Path:
    """$KILN_CACHE, else ~/.cache/kiln: outside the clone, kept between builds."""
    return Path(os.environ.get("KILN_CACHE") or Path.home() / ".cache" / "kiln")


def _wheel_digest(wheel: Path) -> str:
    """The code and entry points in the wheel; not the metadata pbr regenerates (AUTHORS, RECORD)."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            meta = name.partition("/")[0].endswith(".dist-info")
            if meta and not name.endswith(("/entry_points.txt", "/top_level.txt")):
                continue
            digest.update(name.encode() + b"\0" + archive.read(name))
    return digest.hexdigest()


def cache_key(wheel: Path, requirements: list[str]) -> str:
    """The hash of everything the ramdisk is made of."""
    digest = hashlib.sha256()
    for part in (BUILDER_VERSION, str(ZSTD_LEVEL), rootfs.rootfs_key(), *modules.WANTED, *requirements):
        digest.update(part.encode() + b"\0")
    digest.update(_wheel_digest(wheel).encode())
    for path in sorted(FILES.iterdir()) + [UNIT]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _install_files(root: Path) -> None:
    def put(source: Path, rel: str, mode: int = 0o644) -> None:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        os.chmod(target, mode)

    put(FILES / "20-kiln-dhcp.network", "etc/systemd/network/20-kiln-dhcp.network")
    put(FILES / "wait-online-any.conf", "etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf")
    put(FILES / "kiln.conf", "etc/kiln/kiln.conf")
    put(FILES / "kiln-agent", "usr/local/bin/kiln-agent", 0o755)
    put(UNIT, "etc/systemd/system/kiln-agent.service")
    (root / "init").symlink_to("sbin/init")
    for name in ("machine-id", "hostname"):
        (root / "etc" / name).write_text("")  # systemd makes a machine id per boot; DHCP names the host


def _check(root: Path) -> None:
    """The agent imports under the tree's Python and systemd finds nothing wrong with its unit."""
    rootfs.chroot(
        root,
        ["python3", "-c", "import agent.cmd.agent, agent.node.daemon, agent.node.steps, agent.node.lldp"],
        "importing kiln-agent in the ramdisk",
    )
    proc = rootfs.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={root}", "/etc/systemd/system/kiln-agent.service"],
        "systemd-analyze verify of the installed kiln-agent unit",
    )
    if proc.stderr.strip():
        raise BuildError(f"systemd-analyze verify of the installed kiln-agent unit: {proc.stderr.strip()}")


def pack(root: Path, target: Path) -> None:
    """Write ``root`` as a newc cpio owned by root, compressed with zstd, to ``target``."""
    names = ["."]
    for dirpath, dirs, files in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in sorted(dirs) + sorted(files):
            names.append(os.path.normpath(os.path.join(rel, name)))
    listing = ("\n".join(names) + "\n").encode()
    partial = target.with_suffix(".partial")
    with open(partial, "wb") as out:
        cpio = subprocess.Popen(
            ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        zstd = subprocess.Popen(["zstd", "-q", "-T0", f"-{ZSTD_LEVEL}"], stdin=cpio.stdout, stdout=out)
        cpio.stdout.close()
        cpio.stdin.write(listing)
        cpio.stdin.close()
        if cpio.wait() != 0 or zstd.wait() != 0:
            raise BuildError(f"packing the initramfs failed (cpio {cpio.returncode}, zstd {zstd.returncode})")
    os.replace(partial, target)


def _build_into(entry: Path, wheel: Path, requirements: list[str], cache: Path, mirror: str | None) -> None:
    tarball = rootfs.debian_tree(cache, mirror)
    with tempfile.TemporaryDirectory(prefix="kiln-ramdisk-", dir=cache) as tmp:
        root = Path(tmp) / "root"
        rootfs.unpack(tarball, root)
        version = rootfs.kernel_version(root)
        entry.mkdir(parents=True, exist_ok=True)
        rootfs.take_kernel(root, version, entry / KERNEL)
        rootfs.strip(root)
        kept = modules.prune(root, version)
        rootfs.install_agent(root, wheel, requirements)
        _install_files(root)
        rootfs.chroot(root, ["systemctl", "enable", "systemd-networkd", "kiln-agent"], "enabling the units")
        rootfs.chroot(root, ["systemctl", "mask", *rootfs.MASKED], "masking units the ramdisk has no use for")
        rootfs.chroot(root, ["systemctl", "set-default", "multi-user.target"], "setting the default target")
        _check(root)
        pack(root, entry / INITRAMFS)
        (entry / "build.json").write_text(
            json.dumps({"kernel": version, "modules": kept, "requirements": requirements}, indent=1)
        )


def build(output: Path, cache: Path | None = None, mirror: str | None = None, force: bool = False) -> Result:
    """Build (or take from the cache) the ramdisk and put its kernel and initramfs into ``output``."""
    if os.geteuid() != 0:
        raise BuildError("kiln-ramdisk build needs root (mmdebstrap, chroot, files owned by root)")
    for tool in ("cpio", "zstd", "depmod", "chroot", "systemd-analyze"):
        if not shutil.which(tool):
            raise BuildError(f"{tool} is not installed: apt-get install -y cpio zstd kmod coreutils systemd")
    started = time.monotonic()
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    requirements = rootfs.agent_requirements(REPO)
    with tempfile.TemporaryDirectory(prefix="kiln-wheel-") as tmp:
        wheel = rootfs.build_wheel(REPO, Path(tmp))
        key = cache_key(wheel, requirements)
        entry = cache / f"ramdisk-{key}"
        cached = (entry / INITRAMFS).exists() and not force
        if not cached:
            shutil.rmtree(entry, ignore_errors=True)
            try:
                _build_into(entry, wheel, requirements, cache, mirror)
            except BaseException:
                shutil.rmtree(entry, ignore_errors=True)
                raise
    output.mkdir(parents=True, exist_ok=True)
    for name in (KERNEL, INITRAMFS, "build.json"):
        shutil.copyfile(entry / name, output / name)
    return Result(output / KERNEL, output / INITRAMFS, cached, time.monotonic() - started, key)
