"""erase_devices_metadata and erase_devices, in parallel across disks, refusing disks in use."""

from __future__ import annotations

import fcntl
import glob
import json
import os
import random
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor

from oslo_log import log as logging

from agent.node.steps import devices
from agent.node.steps.context import StepContext
from agent.node.steps.errors import StepError

LOG = logging.getLogger(__name__)
MIB = 1 << 20
BLKDISCARD = 0x1277
# Filesystems that other hosts may have mounted at the same time: erasing one destroys their data.
SHARED_FS = {"ocfs2", "gfs2", "gfs", "vmfs", "vmfs_volume_member", "gpfs", "VMFS"}
GPFS_GPT_TYPE = "37AFFC90-EF7D-4E96-91C3-2D7AE055B174"
BTRFS_MIRRORS = (64 * MIB, 256 << 30, 1 << 40)  # super block copies beyond the first MiB


def _sysfs_disk(path: str) -> str | None:
    """The kernel name of the whole disk behind a block device path (sda for /dev/sda1)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not devices.is_block(path):
        return None
    real = os.path.realpath(f"/sys/dev/block/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")
    if os.path.exists(os.path.join(real, "partition")):
        real = os.path.dirname(real)
    return os.path.basename(real)


def _loops_backed_by(path: str) -> list[str]:
    real = os.path.realpath(path)
    found = []
    for backing in glob.glob("/sys/block/loop*/loop/backing_file"):
        try:
            with open(backing) as f:
                if f.read().strip() == real:
                    found.append(backing.split("/")[3])
        except OSError:
            continue
    return found


def _in_use(kname: str) -> list[str]:
    """Why the disk ``kname`` is busy: mounts, swap, holders (LVM, md, dm-crypt)."""
    reasons = []
    for table, what in (("/proc/mounts", "mounted at"), ("/proc/swaps", "swap")):
        try:
            with open(table) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields and fields[0].startswith("/dev/") and _sysfs_disk(fields[0]) == kname:
                reasons.append(
                    f"{fields[0]} {what} {fields[1]}" if what != "swap" else f"{fields[0]} is swap"
                )
    base = f"/sys/block/{kname}"
    for holders in [f"{base}/holders", *glob.glob(f"{base}/{kname}*/holders")]:
        try:
            held = os.listdir(holders)
        except OSError:
            continue
        if held:
            reasons.append(
                f"{os.path.basename(os.path.dirname(holders))} is held by {', '.join(sorted(held))}"
            )
    return reasons


def partitions(target: str) -> list[dict]:
    """The partitions sfdisk finds on ``target`` (start and size in sectors, type), [] without a table."""
    proc = subprocess.run(["sfdisk", "--json", target], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    try:
        return list(json.loads(proc.stdout)["partitiontable"].get("partitions") or [])
    except (ValueError, KeyError):
        return []


def signatures(target: str, offset: int = 0) -> dict:
    """blkid's probe of ``target`` at ``offset`` (TYPE, PTTYPE, LABEL ...); {} when nothing is found."""
    proc = subprocess.run(
        ["blkid", "-p", "-o", "export", "-O", str(offset), target],
        capture_output=True,
        text=True,
        check=False,
    )
    out = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        out[key] = value
    out.pop("DEVNAME", None)
    return out


def shared_fs_at(target: str, offset: int) -> str | None:
    """The cluster filesystem whose superblock starts at ``offset`` (own magic checks, then blkid)."""
    probes = [
        (64 * 1024, b"\x01\x16\x19\x70\x00\x00\x00\x01", "gfs2"),  # gfs2_sb: magic, mh_type 1
        *((2 * bs, b"OCFSV2", "ocfs2") for bs in (512, 1024, 2048, 4096)),  # super block in block 2
        (2 * MIB, b"\x5e\xf1\xab\x2f", "vmfs"),
        (MIB, b"\x0d\xd0\x01\xc0", "vmfs_volume_member"),
    ]
    fd = os.open(target, os.O_RDONLY)
    try:
        for where, magic, fs in probes:
            if os.pread(fd, len(magic), offset + where) == magic:
                return fs
    finally:
        os.close(fd)
    fs = signatures(target, offset).get("TYPE")
    return fs if fs in SHARED_FS else None


def check_disk_free(name: str, target: str) -> None:
    """Raise StepError when ``target`` is mounted, held, or carries a shared (cluster) filesystem."""
    reasons: list[str] = []
    knames = [_sysfs_disk(target)] if devices.is_block(target) else _loops_backed_by(target)
    for kname in filter(None, knames):
        reasons += _in_use(kname)
    ss = devices.sector_size(target)
    parts = partitions(target)
    for offset, where in [(0, "the disk"), *((int(p["start"]) * ss, p.get("node", "?")) for p in parts)]:
        fs = shared_fs_at(target, offset)
        if fs:
            reasons.append(f"{where} holds a shared {fs} filesystem")
    for p in parts:
        if str(p.get("type", "")).upper() == GPFS_GPT_TYPE:
            reasons.append(f"{p.get('node', '?')} is a GPFS (IBM Spectrum Scale) partition")
    if reasons:
        raise StepError(
            f"refusing to erase {name} ({target}): {'; '.join(reasons)}. "
            "Unmount it / stop what holds it, or leave this disk out of the step's disks"
        )


def wipe_metadata(target: str) -> list[str]:
    """Remove partition tables and filesystem signatures; return the signatures found before."""
    ss = devices.sector_size(target)
    size = devices.size_of(target)
    found = []
    parts = partitions(target)
    fd = os.open(target, os.O_WRONLY)
    try:
        for p in parts:
            start, length = int(p["start"]) * ss, int(p["size"]) * ss
            sig = signatures(target, start).get("TYPE")
            if sig:
                found.append(f"{p.get('node', '?')}:{sig}")
            devices.zero_range(fd, start, min(MIB, length))
            if length > MIB:
                devices.zero_range(fd, start + length - MIB, MIB)  # md 1.0, ZFS L2/L3 labels
        for mirror in BTRFS_MIRRORS:
            if mirror + 4096 <= size:
                devices.zero_range(fd, mirror, 4096)
        os.fsync(fd)
    finally:
        os.close(fd)
    whole = signatures(target)
    found += [whole[k] for k in ("PTTYPE", "TYPE") if whole.get(k)]
    devices.wipe_table(target)
    subprocess.run(["wipefs", "--all", "--force", "--quiet", target], capture_output=True, check=False)
    left = signatures(target)
    if left.get("TYPE") or left.get("PTTYPE"):
        raise StepError(f"signatures left on {target} after wiping: {left}")
    return found


def _selected(ctx: StepContext, args: dict) -> list[str]:
    names = args.get("disks")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise StepError(f"disks must be a list of disk names, got {names!r}")
        return names
    mapping = ctx.disk_map()
    all_disks = [d["name"] for d in ctx.disks()]
    if mapping:  # a simulated node: only the disks that have a stand-in
        return [n for n in all_disks if n in mapping or os.path.basename(n) in mapping]
    return all_disks


def _parallel(ctx: StepContext, names: list[str], work) -> dict:
    """Run ``work(name, target)`` for every disk at once; fail naming each disk that failed."""
    targets = {n: ctx.target(n) for n in names}
    for n, t in targets.items():
        check_disk_free(n, t)  # refuse before touching any disk
    results, errors = {}, []
    with ThreadPoolExecutor(max_workers=max(1, min(ctx.opts.erase_concurrency, len(names) or 1))) as pool:
        futures = {n: pool.submit(work, n, t) for n, t in targets.items()}
        for n, fut in futures.items():
            try:
                results[n] = fut.result()
            except (StepError, OSError) as exc:
                errors.append(f"{n}: {exc}")
    if errors:
        raise StepError("erasing failed on " + "; ".join(errors))
    return results


def erase_devices_metadata(ctx: StepContext, args: dict) -> dict:
    """Wipe partition tables (incl. backup GPT) and filesystem signatures on the disks."""
    names = _selected(ctx, args)
    results = _parallel(ctx, names, lambda n, t: {"removed": wipe_metadata(t)})
    LOG.info("Metadata erased on %s", ", ".join(names) or "no disk")
    return {"disks": results}


# -- full erase -------------------------------------------------------------------------------------
def _nvme_format(target: str) -> str | None:
    """Format an NVMe namespace with crypto erase (or user-data erase); None when not NVMe or no nvme-cli."""
    if not os.path.basename(target).startswith("nvme") or not devices.is_block(target):
        return None
    try:
        proc = subprocess.run(
            ["nvme", "id-ctrl", target, "-o", "json"], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return None
    if proc.returncode != 0:
        return None
    fna = int(json.loads(proc.stdout).get("fna", 0))
    ses, method = (2, "nvme-crypto-erase") if fna & 0x4 else (1, "nvme-user-data-erase")
    fmt = subprocess.run(
        ["nvme", "format", target, f"--ses={ses}", "--force"], capture_output=True, text=True
    )
    if fmt.returncode != 0:
        LOG.warning("nvme format %s failed: %s", target, fmt.stderr.strip())
        return None
    return method


def zero_samples(target: str, samples: int, block: int = 64 * 1024) -> dict:
    """Read the first, the last and ``samples`` random blocks: which offsets, and whether all were zero."""
    size = devices.size_of(target)
    offsets = {0, max(0, size - block)} if size else set()
    rng = random.Random()
    if size:
        offsets |= {rng.randrange(0, max(1, size - block)) // 4096 * 4096 for _ in range(samples)}
    zero = bytes(block)
    nonzero = []
    fd = os.open(target, os.O_RDONLY)
    try:
        for off in sorted(offsets):
            data = os.pread(fd, block, off)
            if data != zero[: len(data)]:
                nonzero.append(off)
    finally:
        os.close(fd)
    return {"block": block, "offsets": sorted(offsets), "nonzero_offsets": nonzero, "all_zero": not nonzero}


def reads_zeros(target: str, samples: int, block: int = 64 * 1024) -> bool:
    """Read the first, the last and ``samples`` random blocks: True when all are zero."""
    return zero_samples(target, samples, block)["all_zero"]


def _discard(target: str) -> bool:
    """BLKDISCARD over the whole block device; False when it is not supported."""
    if not devices.is_block(target):
        return False
    size = devices.size_of(target)
    fd = os.open(target, os.O_WRONLY)
    try:
        fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", 0, size))
    except OSError as exc:
        LOG.info("BLKDISCARD not supported on %s (%s); overwriting", target, exc)
        return False
    finally:
        os.close(fd)
    return True


def overwrite_zeros(target: str, chunk: int = 4 * MIB) -> None:
    """Write zeros over the whole device and fsync."""
    size = devices.size_of(target)
    fd = os.open(target, os.O_WRONLY)
    try:
        _zero_big(fd, size, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)


def _zero_big(fd: int, size: int, chunk: int) -> None:
    block = bytes(chunk)
    off = 0
    while off < size:
        off += os.pwrite(fd, block[: min(chunk, size - off)], off)


def erase_disk(target: str, samples: int) -> dict:
    """NVMe format, else discard with verification, else overwrite; how it was done, with the samples read."""
    method = _nvme_format(target)
    if method:
        check = zero_samples(target, samples)
        return {"method": method, "verified": check["all_zero"], "samples": check}
    if _discard(target):
        check = zero_samples(target, samples)
        if check["all_zero"]:
            return {"method": "discard", "verified": True, "samples": check}
        LOG.warning("%s does not read zeros after discard; overwriting", target)
    overwrite_zeros(target)
    check = zero_samples(target, samples)
    return {"method": "zero", "verified": check["all_zero"], "samples": check}


def erase_devices(ctx: StepContext, args: dict) -> dict:
    """Erase whole disks: NVMe crypto erase, discard (verified) or zeros; in parallel."""
    names = _selected(ctx, args)
    samples = ctx.opts.erase_verify_samples
    results = _parallel(ctx, names, lambda n, t: erase_disk(t, samples))
    LOG.info("Disks erased: %s", ", ".join(f"{n} ({r['method']})" for n, r in results.items()) or "none")
    return {"disks": results}
