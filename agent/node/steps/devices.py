"""Disks as steps see them: the [agent]disk_map stand-ins, sizes, and partition-table wiping."""

from __future__ import annotations

import fcntl
import os
import stat
import struct

from agent.node.steps.errors import StepError

MIB = 1 << 20
#: Moves a GPT's backup header and table to the disk's real end (an image written to a larger
#: disk leaves them mid-disk). sfdisk does it at once; sgdisk -e sleeps a second for the kernel.
RELOCATE_BACKUP_GPT = ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--relocate", "gpt-bak-std"]
BLKGETSIZE64 = 0x80081272
BLKSSZGET = 0x1268


def target_path(name: str, disk_map: dict[str, str] | None) -> str:
    """The path a step writes for disk ``name``: its disk_map stand-in, else the device itself."""
    if not isinstance(name, str) or not name:
        raise StepError(f"a disk name is required, got {name!r}")
    mapping = disk_map or {}
    path = mapping.get(name) or mapping.get(os.path.basename(name))
    if path is None and not name.startswith("/dev/"):
        path = mapping.get("/dev/" + name)
    path = path or (name if name.startswith("/") else "/dev/" + name)
    if not os.path.exists(path):
        raise StepError(f"disk {name}: {path} does not exist (check the device or [agent]disk_map)")
    return path


def is_block(path: str) -> bool:
    """Say whether ``path`` is a block device."""
    return stat.S_ISBLK(os.stat(path).st_mode)


def size_of(path: str) -> int:
    """Size in bytes of a block device or a stand-in file."""
    if is_block(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            buf = fcntl.ioctl(fd, BLKGETSIZE64, b"\0" * 8)
            return struct.unpack("Q", buf)[0]
        finally:
            os.close(fd)
    return os.stat(path).st_size


def sector_size(path: str) -> int:
    """Logical sector size of a block device (512 for a file)."""
    if not is_block(path):
        return 512
    fd = os.open(path, os.O_RDONLY)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, BLKSSZGET, b"\0" * 4))[0]
    finally:
        os.close(fd)


def zero_range(fd: int, offset: int, length: int) -> None:
    """Write zeros over [offset, offset+length)."""
    block = b"\0" * min(length, MIB)
    done = 0
    while done < length:
        n = os.pwrite(fd, block[: min(len(block), length - done)], offset + done)
        done += n


def wipe_table(path: str, span: int = MIB) -> None:
    """Zero the first and last ``span`` bytes (MBR, primary and backup GPT) and fsync."""
    size = size_of(path)
    fd = os.open(path, os.O_WRONLY)
    try:
        zero_range(fd, 0, min(span, size))
        if size > span:
            zero_range(fd, max(span, size - span), min(span, size - span))
        os.fsync(fd)
    finally:
        os.close(fd)
    reread_partitions(path)


def reread_partitions(path: str) -> None:
    """Ask the kernel to re-read a block device's partition table (BLKRRPART); files: nothing."""
    if not is_block(path):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.ioctl(fd, 0x125F)  # BLKRRPART
    except OSError:
        pass  # busy or a loop device without partition scanning: the table on disk is what counts
    finally:
        os.close(fd)
