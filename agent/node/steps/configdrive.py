"""write_configdrive: a config-2 partition at the end of the root disk (ISO9660 or vfat)."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import re
import subprocess
import tempfile

from oslo_log import log as logging

from agent.common import exception
from agent.common.network_data import build_network_data
from agent.common.utils import is_http_url
from agent.node.steps import devices, fetch, rootdev
from agent.node.steps.context import StepContext
from agent.node.steps.errors import StepError

LOG = logging.getLogger(__name__)
MIB = 1 << 20
MAX_BYTES = 64 * MIB  # Ironic's limit on a configdrive
LABEL = "config-2"
GPT_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"  # Linux filesystem data
MBR_TYPE = "83"


def _run(argv: list[str], what: str, stdin: str | None = None) -> str:
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise StepError(f"{argv[0]} is not installed; it is needed to {what}") from exc
    if proc.returncode != 0:
        raise StepError(f"{what} failed: {argv[0]} exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return proc.stdout


def decode_configdrive(value: str) -> bytes:
    """The filesystem image in a gzipped (or plain) base64 configdrive string."""
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StepError(f"the configdrive is not valid base64: {exc}") from exc
    return _unpack(data, "the configdrive")


def fetch_configdrive(ctx: StepContext, url: str) -> bytes:
    """The filesystem image behind a configdrive URL: gzipped base64 text, or a (gzipped) raw image."""
    data = fetch.fetch_bytes(ctx, url, "configdrive", MAX_BYTES * 2)  # base64 of 64 MiB is 4/3 that
    where = f"the configdrive at {fetch.safe_url(url)}"
    if data[:2] == b"\x1f\x8b" or _is_filesystem(data):
        return _unpack(data, where)
    try:
        return decode_configdrive(data.decode("ascii"))
    except (UnicodeDecodeError, StepError) as exc:
        raise StepError(f"{where} is neither a filesystem image nor gzipped base64 text: {exc}") from exc


def _unpack(data: bytes, where: str) -> bytes:
    """Gunzip ``data`` when it is gzip; refuse it empty or over 64 MiB, naming ``where`` it came from."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise StepError(f"{where} is not valid gzip: {exc}") from exc
    if len(data) > MAX_BYTES:
        raise StepError(f"{where} is {len(data)} B; at most {MAX_BYTES} B (64 MiB) fit")
    if not data:
        raise StepError(f"{where} is empty")
    return data


def _is_filesystem(data: bytes) -> bool:
    """An ISO9660 image (CD001 at 32 KiB + 1) or a FAT one (boot sector signature and a FAT name)."""
    if data[32769:32774] == b"CD001":
        return True
    return data[510:512] == b"\x55\xaa" and (data[54:57] == b"FAT" or data[82:87] == b"FAT32")


def _tree(workdir: str, contents: dict) -> str:
    """Write openstack/latest/{meta_data.json, network_data.json, user_data} under workdir/root."""
    root = os.path.join(workdir, "root")
    latest = os.path.join(root, "openstack", "latest")
    os.makedirs(latest)
    meta = contents.get("meta_data")
    meta = {} if meta is None else meta
    if not isinstance(meta, dict):
        raise StepError("configdrive meta_data must be an object")
    files = {"meta_data.json": json.dumps(meta, sort_keys=True)}
    network = contents.get("network_data")
    if network is not None:
        try:
            files["network_data.json"] = json.dumps(build_network_data([], network), sort_keys=True)
        except exception.Invalid as exc:
            raise StepError(f"configdrive {exc}") from exc
    if contents.get("vendor_data") is not None:
        files["vendor_data.json"] = json.dumps(contents["vendor_data"], sort_keys=True)
    user_data = contents.get("user_data")
    if user_data is not None:
        files["user_data"] = user_data if isinstance(user_data, str) else json.dumps(user_data)
    for name, text in files.items():
        with open(os.path.join(latest, name), "w", encoding="utf-8") as f:
            f.write(text)
    return root


def build_iso(contents: dict, workdir: str) -> bytes:
    """An ISO9660 (Rock Ridge + Joliet) image labelled config-2 holding ``contents``."""
    root = _tree(workdir, contents)
    out = os.path.join(workdir, "configdrive.iso")
    _run(
        ["xorriso", "-as", "mkisofs", "-o", out, "-ldots", "-allow-lowercase", "-allow-multidot", "-l",
         "-quiet", "-J", "-r", "-V", LABEL, root],
        "build the configdrive ISO (Debian: xorriso)",
    )  # fmt: skip
    with open(out, "rb") as f:
        return f.read()


def build_vfat(contents: dict, workdir: str, size: int = 16 * MIB) -> bytes:
    """A vfat image labelled CONFIG-2 holding ``contents`` (mkfs.vfat + mtools)."""
    root = _tree(workdir, contents)
    out = os.path.join(workdir, "configdrive.vfat")
    _run(["mkfs.vfat", "-n", LABEL.upper(), "-C", out, str(size // 1024)], "make the vfat configdrive")
    _run(["mcopy", "-s", "-i", out, os.path.join(root, "openstack"), "::"], "fill the vfat configdrive")
    with open(out, "rb") as f:
        return f.read()


def _table(target: str) -> dict | None:
    """sfdisk's JSON view of the partition table, None when the disk has none."""
    proc = subprocess.run(["sfdisk", "--json", target], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return json.loads(proc.stdout)["partitiontable"]


def _partition_number(part: dict) -> int | None:
    digits = re.search(r"(\d+)$", str(part.get("node", "")))
    return int(digits.group(1)) if digits else None


def _is_config_partition(target: str, part: dict, sector: int) -> bool:
    """A partition named config-2 (GPT) or holding a filesystem labelled config-2 (ISO9660 or FAT)."""
    if str(part.get("name", "")).lower() == LABEL:
        return True
    with open(target, "rb") as fh:
        fh.seek(int(part["start"]) * sector)
        head = fh.read(32768 + 2048)
    if head[32769:32774] == b"CD001":
        return head[32808:32840].decode("ascii", "replace").strip().lower() == LABEL
    if head[510:512] == b"\x55\xaa":
        fat = head[71:82] if head[82:87] == b"FAT32" else head[43:54]
        return fat.decode("ascii", "replace").strip().lower() == LABEL
    return False


def remove_config_partitions(target: str) -> list[int]:
    """Delete the config-2 partitions on ``target`` (a rebuild brings a new one); return their numbers."""
    table = _table(target)
    if not table:
        return []
    sector = int(table.get("sectorsize") or devices.sector_size(target))
    numbers = [
        n
        for part in table.get("partitions") or []
        if _is_config_partition(target, part, sector) and (n := _partition_number(part)) is not None
    ]
    for number in sorted(numbers, reverse=True):
        _run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--delete", target, str(number)],
             f"remove the old config-2 partition {number}")  # fmt: skip
    return numbers


def add_partition(target: str, nbytes: int, minimum: int | None = None) -> tuple[int, int, str]:
    """Append a partition of ``nbytes`` (or, short of room, ``minimum``) at the end of the disk.

    Returns (offset, size, label type); the start is MiB-aligned, the end the last usable sector.
    """
    ss = devices.sector_size(target)
    table = _table(target)
    if table is None:
        _run(["sfdisk", "--quiet", target], "write an MBR partition table", stdin="label: dos\n")
        table = _table(target) or {}
    label = table.get("label")
    if label == "gpt":
        _run(devices.RELOCATE_BACKUP_GPT + [target], "move the backup GPT to the end of the disk")
        table = _table(target) or table
        last = int(table.get("lastlba") or devices.size_of(target) // ss - 34)
    elif label == "dos":
        last = devices.size_of(target) // ss - 1
        if len(table.get("partitions") or []) >= 4:
            raise StepError(f"{target} has 4 primary MBR partitions: no room for the config-2 partition")
    else:
        raise StepError(f"{target} has a {label!r} partition table; only GPT and MBR are supported")
    align = MIB // ss
    used_end = max((int(p["start"]) + int(p["size"]) for p in table.get("partitions") or []), default=align)
    for want in (nbytes, minimum or nbytes):
        sectors = -(-want // MIB) * MIB // ss
        start = (last + 1 - sectors) // align * align
        if start >= used_end:
            break
    if start < used_end:
        raise StepError(
            f"no room for a {sectors * ss // MIB} MiB config-2 partition at the end of {target}: "
            f"the partitions end at sector {used_end}, the disk at {last}"
        )
    size = last + 1 - start
    line = f"start={start}, size={size}, type={GPT_TYPE if label == 'gpt' else MBR_TYPE}"
    if label == "gpt":
        line += f', name="{LABEL}"'
    _run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--append", target], "add the partition",
         stdin=line + "\n")  # fmt: skip
    return start * ss, size * ss, label


def write_configdrive(ctx: StepContext, args: dict) -> dict:
    """Write the configdrive (given ISO, or built from meta_data/network_data/user_data) to the disk."""
    drive = args.get("configdrive")
    if not drive:
        raise StepError("write_configdrive needs configdrive: a gzipped base64 ISO, its URL or an object")
    root = args.get("root_device")
    if isinstance(root, str) and root:
        name = root
    else:
        name = rootdev.select_root_device(ctx.disks(), root if isinstance(root, dict) else None)["name"]
    target = ctx.target(name)
    fs = str(args.get("configdrive_format") or "iso9660").lower()
    with tempfile.TemporaryDirectory(prefix="kiln-configdrive-") as workdir:
        if isinstance(drive, str) and is_http_url(drive):
            data, fs = fetch_configdrive(ctx, drive.strip()), "given"
        elif isinstance(drive, str):
            data, fs = decode_configdrive(drive), "given"
        elif isinstance(drive, dict):
            if fs == "vfat":
                data = build_vfat(drive, workdir)
            elif fs == "iso9660":
                data = build_iso(drive, workdir)
            else:
                raise StepError(f"configdrive_format {fs!r} is not supported; use iso9660 or vfat")
        else:
            raise StepError(f"configdrive must be a string or an object, got {type(drive).__name__}")
    removed = remove_config_partitions(target)
    offset, size, label = add_partition(target, max(len(data), MAX_BYTES), len(data))
    fd = os.open(target, os.O_WRONLY)
    try:
        devices.zero_range(fd, offset, size)
        view = memoryview(data)
        done = 0
        while done < len(data):
            done += os.pwrite(fd, view[done:], offset + done)
        os.fsync(fd)
    finally:
        os.close(fd)
    devices.reread_partitions(target)
    LOG.info(
        "Configdrive (%s, %d B) written to %s at offset %d%s",
        fs,
        len(data),
        name,
        offset,
        f"; replaced config-2 partition(s) {removed}" if removed else "",
    )
    return {"root_device": name, "offset": offset, "size": size, "bytes": len(data), "filesystem": fs,
            "partition_table": label}  # fmt: skip
