"""Copy what the inventory reads from a host root into a plain-file fixture tree.

Attributes become plain files (at most 64 KiB each), device directories become real
directories under ``sys/devices/...`` (amdgpu's ``ras/`` counters among them), and only
the links the readers follow are kept, rewritten relative and pointing inside the tree.
Links are never followed while walking, so a link loop cannot trap the copy. The kernel
log (``/dev/kmsg``, read without waiting) becomes a plain file ``dev/kmsg`` in the same
record format, for the Xids (:mod:`agent.inventory.kmsg`). Pure Python: no subprocess.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import re
import stat
import tarfile
from dataclasses import dataclass, field

from agent.inventory import kmsg
from agent.inventory.base import Root

CAP = 64 * 1024
MAX_FILES = 200_000
MAX_DEPTH = 12

# Files that are huge, slow, have side effects on read, or are binary blobs the readers never use.
SKIP_FILES = {
    "config",
    "rom",
    "remove",
    "rescan",
    "reset",
    "vpd",
    "bind",
    "unbind",
    "new_id",
    "remove_id",
    "eeprom",
    "nvmem",
    "trigger",
    "descriptors",
    "autosuspend_delay_ms",
}
SKIP_PREFIXES = ("resource",)
# Sub-directories of a device that the readers never need.
SKIP_DIRS = {
    "power",
    "msi_irqs",
    "queues",
    "statistics",
    "trace",
    "mq",
    "integrity",
    "hwmon",
    "ptp",
    "wakeup",
    "firmware_node",
    "link",
    "drm",
    "i2c-dev",
    "mdev_supported_types",
    "counters",
    "hw_counters",
    "gid_attrs",
    "pkeys",
    "bdi",
    "bsg",
    "scsi_generic",
    "infiniband_mad",
    "infiniband_verbs",
    "uio",
    "thermal",
    "leds",
    "input",
    "sound",
    "msi",
    "dma",
    "remoteproc",
    "hidden",
    "cdev",
}
# Links kept inside device directories (everything else is dropped).
KEEP_LINKS = {"driver", "device", "iommu_group", "subsystem", "physfn"}
BDF = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")

FILES = [
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/cmdline",
    "/proc/mounts",
    "/proc/swaps",
    "/proc/sys/kernel/hostname",
    "/proc/sys/kernel/osrelease",
    "/etc/hostname",
    "/proc/net/if_inet6",
    "/proc/net/fib_trie",
    "/proc/net/route",
    "/proc/net/dev",
    "/proc/driver/nvidia/version",
    "/proc/driver/nvidia/gpus/*/information",
    "/proc/stat",
    "/proc/sys/kernel/random/boot_id",
    "/sys/firmware/dmi/tables/DMI",
    "/sys/firmware/dmi/tables/smbios_entry_point",
    "/sys/firmware/efi/fw_platform_size",
    "/sys/devices/system/cpu/online",
    "/sys/devices/system/cpu/possible",
    "/sys/devices/system/cpu/present",
    "/sys/devices/system/cpu/cpu[0-9]*/topology/*",
    "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq",
    "/sys/devices/system/node/online",
    "/sys/devices/system/node/possible",
    "/sys/devices/system/node/has_cpu",
    "/sys/devices/system/node/has_memory",
    "/sys/devices/system/node/node[0-9]*/cpulist",
    "/sys/devices/system/node/node[0-9]*/cpumap",
    "/sys/devices/system/node/node[0-9]*/meminfo",
    "/sys/devices/system/node/node[0-9]*/distance",
    "/sys/kernel/iommu_groups/*/type",
    "/run/udev/data/b*",
    "/run/udev/data/n*",
    "/run/udev/data/+pci:*",
]
# Links whose targets (device directories) are walked.
CLASS_LINKS = [
    "/sys/class/dmi/id",
    "/sys/class/net/*",
    "/sys/class/block/*",
    "/sys/block/*",
    "/sys/bus/pci/devices/*",
    "/sys/class/nvme/*",
    "/sys/class/infiniband/*",
    "/sys/class/kfd/kfd",
]
PLAIN_LINKS = ["/sys/kernel/iommu_groups/*/devices/*", "/dev/disk/by-path/*", "/dev/disk/by-id/*"]
DIRS = ["/sys/firmware/efi"]


@dataclass
class Capture:
    """One copy of a host root into an output directory."""

    root: str
    out: str
    errors: list[str] = field(default_factory=list)
    files: int = 0
    _walked: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.root = os.path.abspath(self.root)
        self.out = os.path.abspath(self.out)

    # -- paths ---------------------------------------------------------
    def src(self, host: str) -> str:
        """The on-disk path of a host path in the source root."""
        return os.path.join(self.root, host.lstrip("/"))

    def dst(self, host: str) -> str:
        """The on-disk path of a host path in the output tree."""
        return os.path.join(self.out, host.lstrip("/"))

    def host(self, real: str) -> str:
        """Turn a source on-disk path back into a host path."""
        rel = os.path.relpath(real, self.root)
        return "/" if rel == "." else "/" + rel

    def glob(self, pattern: str) -> list[str]:
        """Expand a host-path glob in the source root; host paths, sorted."""
        return sorted(
            self.host(p) for p in glob.glob(os.path.join(glob.escape(self.root), pattern.lstrip("/")))
        )

    # -- copying -------------------------------------------------------
    def copy_file(self, host: str) -> None:
        """Copy one attribute (capped); record why when it cannot be read."""
        name = os.path.basename(host)
        if name in SKIP_FILES or name.startswith(SKIP_PREFIXES) or self.files >= MAX_FILES:
            return
        path = self.src(host)
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o444:
                return  # not a file, or write-only
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                data = os.read(fd, CAP + 1)
                chunks = [data]
                total = len(data)
                while data and total <= CAP:
                    data = os.read(fd, CAP + 1 - total)
                    chunks.append(data)
                    total += len(data)
            finally:
                os.close(fd)
        except OSError as exc:
            self.errors.append(f"{host}: {exc.strerror or exc}")
            return
        blob = b"".join(chunks)
        if len(blob) > CAP:
            blob = blob[:CAP]
            self.errors.append(f"{host}: capped at {CAP} bytes")
        out = self.dst(host)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(blob)
        self.files += 1

    def copy_link(self, host: str) -> str | None:
        """Recreate a link relative and inside the tree; return its target host path."""
        try:
            text = os.readlink(self.src(host))
        except OSError as exc:
            self.errors.append(f"{host}: {exc.strerror or exc}")
            return None
        if os.path.isabs(text):
            target = os.path.normpath(text)
        else:
            target = os.path.normpath(os.path.join(os.path.dirname(host), text))
        out = self.dst(host)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if os.path.lexists(out):
            os.unlink(out)
        # Keep the kernel's own relative text (readers take its last component); make absolute ones relative.
        os.symlink(text if not os.path.isabs(text) else os.path.relpath(target, os.path.dirname(host)), out)
        return target

    def walk(self, host: str, depth: int = 0) -> None:
        """Copy a device directory: its attributes, kept links and useful sub-directories."""
        real = os.path.realpath(self.src(host))
        if real in self._walked or depth > MAX_DEPTH:
            return
        self._walked.add(real)
        os.makedirs(self.dst(host), exist_ok=True)
        try:
            entries = sorted(os.scandir(self.src(host)), key=lambda e: e.name)
        except OSError as exc:
            self.errors.append(f"{host}: {exc.strerror or exc}")
            return
        parent = os.path.basename(host)
        for e in entries:
            sub = f"{host.rstrip('/')}/{e.name}"
            if parent == "gids" and e.name != "0":
                continue
            if e.is_symlink():
                if e.name in KEEP_LINKS or e.name.startswith("virtfn") or parent in ("holders", "slaves"):
                    self._keep_dir(self.copy_link(sub))
            elif e.is_dir(follow_symlinks=False):
                if e.name not in SKIP_DIRS and not BDF.match(e.name):
                    self.walk(sub, depth + 1)
            elif e.is_file(follow_symlinks=False):
                self.copy_file(sub)

    def _keep_dir(self, target: str | None) -> None:
        """Make a kept link's target exist in the tree (an empty directory at least)."""
        if target and not os.path.lexists(self.dst(target)) and os.path.isdir(self.src(target)):
            os.makedirs(self.dst(target), exist_ok=True)

    def follow(self, link_host: str) -> None:
        """Keep a class/bus link and walk the device directory it points at, with its parents' chain."""
        target = self.copy_link(link_host)
        if target is None or not os.path.isdir(self.src(target)):
            return
        self.walk(target)
        # A device's ancestors (PCI bridges, virtio parents) hold attributes the readers use.
        up = os.path.dirname(target)
        while up.startswith("/sys/devices/") and up.count("/") > 2:
            os.makedirs(self.dst(up), exist_ok=True)
            if BDF.match(os.path.basename(up)):
                self.walk(up)
            up = os.path.dirname(up)

    def run(self) -> None:
        """Copy everything the inventory reads."""
        for pattern in FILES:
            for host in self.glob(pattern):
                self.copy_file(host)
        for pattern in DIRS:
            for host in self.glob(pattern):
                os.makedirs(self.dst(host), exist_ok=True)
        for pattern in CLASS_LINKS:
            for host in self.glob(pattern):
                if os.path.islink(self.src(host)):
                    self.follow(host)
                elif os.path.isdir(self.src(host)):
                    self.walk(host)
        for pattern in PLAIN_LINKS:
            for host in self.glob(pattern):
                if os.path.islink(self.src(host)):
                    self.copy_link(host)
        self.copy_kmsg()

    def copy_kmsg(self) -> None:
        """Save the kernel log's records as a plain dev/kmsg file (a live ring buffer or an earlier copy)."""
        if not os.path.lexists(self.src(kmsg.KMSG)):
            return
        root = Root(self.root)
        records = kmsg.read_records(root)
        self.errors.extend(f"{p.path}: {p.error}" for p in root.errors)
        if records is not None:
            kmsg.write_capture(records, self.dst(kmsg.KMSG))
            self.files += 1


def _read_text(root: str, host: str) -> str | None:
    try:
        with open(os.path.join(root, host.lstrip("/")), encoding="utf-8", errors="replace") as f:
            return f.read(4096).strip() or None
    except OSError:
        return None


def capture(root: str, out: str, *, version: str | None = None) -> Capture:
    """Capture ``root`` into ``out``; write MANIFEST.json and CAPTURE-ERRORS.txt; return the result."""
    cap = Capture(root, out)
    os.makedirs(cap.out, exist_ok=True)
    cap.run()
    manifest = {
        "hostname": _read_text(cap.root, "/proc/sys/kernel/hostname")
        or _read_text(cap.root, "/etc/hostname"),
        "kernel": _read_text(cap.root, "/proc/sys/kernel/osrelease"),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kiln_version": version or _kiln_version(),
        "source_root": cap.root,
        "files": cap.files,
        "errors": len(cap.errors),
    }
    with open(os.path.join(cap.out, "MANIFEST.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(cap.out, "CAPTURE-ERRORS.txt"), "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in cap.errors))
    return cap


def write_tar(out: str, tar_path: str) -> None:
    """Pack a captured tree into a .tar.gz, links kept as links."""
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(out, arcname=os.path.basename(os.path.abspath(out)))


def _kiln_version() -> str:
    try:
        from importlib.metadata import version

        return version("kiln")
    except Exception:  # noqa: BLE001 - any metadata problem means "unknown"
        return "unknown"
