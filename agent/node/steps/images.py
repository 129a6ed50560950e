"""write_image: stream an image over HTTP(S) onto the root device, verifying its checksum."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import tempfile
import threading

import requests
from oslo_log import log as logging

from agent.common import checksums
from agent.common.utils import is_http_url
from agent.node.steps import devices, fetch, rootdev
from agent.node.steps.context import StepContext
from agent.node.steps.errors import StepError

LOG = logging.getLogger(__name__)

CHECKSUM_FILE_LIMIT = 1 << 20  # a sha256sum file of thousands of images still fits
QCOW2_MAGIC = b"QFI\xfb"
FORMATS = ("raw", "qcow2")


def expected_checksum(ctx: StepContext, args: dict) -> tuple[str, str]:
    """(algorithm, lower-case hex) from image_os_hash_algo/value, image_checksum, or its checksum file."""
    algo, value, legacy = (
        args.get("image_os_hash_algo"),
        args.get("image_os_hash_value"),
        args.get("image_checksum"),
    )
    if not value and is_http_url(legacy):
        text = fetch.fetch_bytes(ctx, str(legacy).strip(), "image checksum file", CHECKSUM_FILE_LIMIT)
        try:
            legacy = checksums.from_checksum_file(
                text.decode("utf-8", "replace"), str(args.get("image_source"))
            )
        except checksums.ChecksumError as exc:
            raise StepError(f"{exc} (checksum file {fetch.safe_url(str(args['image_checksum']))})") from exc
    try:
        algo, value = checksums.parse_checksum(algo, value, legacy)
    except checksums.ChecksumError as exc:
        raise StepError(f"write_image: {exc}") from exc
    if algo == "md5" and not ctx.opts.allow_md5:
        raise StepError(
            "md5 image checksums are refused; give a sha256 or sha512 checksum (or set [agent]allow_md5)"
        )
    return algo, value


class _Writer(threading.Thread):
    """Writes queued chunks to ``fd`` so hashing and writing overlap."""

    def __init__(self, fd: int) -> None:
        super().__init__(name="image-writer", daemon=True)
        self.fd = fd
        self.q: queue.Queue = queue.Queue(maxsize=4)
        self.error: OSError | None = None
        self.offset = 0

    def run(self) -> None:
        while True:
            chunk = self.q.get()
            if chunk is None:
                return
            if self.error is not None:
                continue
            try:
                view = memoryview(chunk)
                while view:
                    n = os.pwrite(self.fd, view, self.offset)
                    self.offset += n
                    view = view[n:]
            except OSError as exc:
                self.error = exc


def _chunks(resp: requests.Response, size: int):
    try:
        yield from resp.iter_content(chunk_size=size)
    except requests.RequestException as exc:
        raise StepError(f"the image download broke off: {exc}") from exc


def _stream_raw(ctx: StepContext, resp: requests.Response, target: str, algo: str) -> tuple[int, str]:
    """Write the body to ``target`` as it arrives; return (bytes, hex digest)."""
    capacity = devices.size_of(target)
    length = resp.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > capacity:
        raise StepError(f"the image ({int(length)} B) is larger than the disk {target} ({capacity} B)")
    digest = hashlib.new(algo)
    total = 0
    fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
    writer = _Writer(fd)
    writer.start()
    try:
        for chunk in _chunks(resp, ctx.opts.image_chunk_mib << 20):
            if not chunk:
                continue
            if total == 0:
                if chunk[:4] == QCOW2_MAGIC:
                    raise StepError("the image is qcow2 but image_disk_format says raw; set it to qcow2")
                devices.wipe_table(target)
            total += len(chunk)
            if total > capacity:
                raise StepError(f"the image is larger than the disk {target} ({capacity} B)")
            digest.update(chunk)
            writer.q.put(chunk)
            if writer.error is not None or ctx.stop.is_set():
                break
    finally:
        writer.q.put(None)
        writer.join()
        try:
            if writer.error is None:
                os.fsync(fd)
        finally:
            os.close(fd)
    if writer.error is not None:
        raise StepError(f"writing the image to {target} failed: {writer.error}")
    if ctx.stop.is_set():
        raise StepError("the agent is stopping; image write interrupted")
    return total, digest.hexdigest()


def _download(ctx: StepContext, resp: requests.Response, algo: str) -> tuple[str, int, str]:
    """Download the body to a temporary file; return (path, bytes, hex digest)."""
    digest = hashlib.new(algo)
    total = 0
    fd, path = tempfile.mkstemp(prefix="kiln-image-", suffix=".qcow2", dir=ctx.opts.image_tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(resp, ctx.opts.image_chunk_mib << 20):
                digest.update(chunk)
                out.write(chunk)
                total += len(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path, total, digest.hexdigest()


def _qemu_img(args: list[str], what: str) -> str:
    try:
        proc = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise StepError(
            "qemu-img is not installed; it is needed for qcow2 images (Debian: qemu-utils)"
        ) from exc
    if proc.returncode != 0:
        raise StepError(f"qemu-img {what} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc.stdout


def _convert_qcow2(src: str, target: str) -> int:
    """Check the qcow2 image and convert it to raw onto ``target``; return its virtual size."""
    info = json.loads(_qemu_img(["info", "--output=json", "-f", "qcow2", src], "info"))
    if info.get("format") != "qcow2":
        raise StepError(f"the image is {info.get('format')}, not qcow2 as image_disk_format says")
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise StepError("the qcow2 image has a backing file; flatten it (qemu-img convert) before deploying")
    virtual = int(info.get("virtual-size") or 0)
    capacity = devices.size_of(target)
    if virtual > capacity:
        raise StepError(
            f"the image's virtual size ({virtual} B) is larger than the disk {target} ({capacity} B)"
        )
    cache = "none" if devices.is_block(target) else "writeback"
    devices.wipe_table(target)
    _qemu_img(["convert", "-n", "-f", "qcow2", "-O", "raw", "-t", cache, src, target], "convert")
    fd = os.open(target, os.O_WRONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return virtual


def _fix_gpt(target: str) -> None:
    """Move a whole-disk image's backup GPT to the real end of the disk (sfdisk --relocate)."""
    fd = os.open(target, os.O_RDONLY)
    try:
        sig = os.pread(fd, 8, devices.sector_size(target))
    finally:
        os.close(fd)
    if sig != b"EFI PART":
        return
    try:
        proc = subprocess.run(
            devices.RELOCATE_BACKUP_GPT + [target], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        LOG.warning("sfdisk not found: the backup GPT of %s stays where the image put it", target)
        return
    if proc.returncode != 0:
        LOG.warning("sfdisk --relocate gpt-bak-std %s failed: %s", target, proc.stderr.strip())


def write_image(ctx: StepContext, args: dict) -> dict:
    """Write the image at ``image_source`` onto the root device and verify its checksum."""
    url = args.get("image_source")
    if not isinstance(url, str) or not url:
        raise StepError("write_image needs image_source, the image's http(s) URL")
    fmt = str(args.get("image_disk_format") or "raw").lower()
    if fmt not in FORMATS:
        raise StepError(f"image_disk_format {fmt!r} is not supported; use raw or qcow2")
    algo, expected = expected_checksum(ctx, args)
    disk = rootdev.select_root_device(ctx.disks(), args.get("root_device"))
    target = ctx.target(disk["name"])
    LOG.info("Writing %s image %s to %s (%s)", fmt, fetch.safe_url(url), disk["name"], target)
    resp = fetch.open_stream(ctx, url, "image")
    written = 0
    try:
        if fmt == "raw":
            try:
                written, actual = _stream_raw(ctx, resp, target, algo)
            except StepError:
                devices.wipe_table(target)  # never leave half an image that could boot
                raise
        else:
            tmp, written, actual = _download(ctx, resp, algo)
    finally:
        resp.close()
    try:
        if actual != expected:
            devices.wipe_table(target)
            raise StepError(
                f"image {fetch.safe_url(url)} checksum mismatch: expected {algo}:{expected}, "
                f"got {algo}:{actual}; "
                f"the partition table of {disk['name']} was wiped"
            )
        if fmt == "qcow2":
            try:
                written = _convert_qcow2(tmp, target)
            except StepError:
                devices.wipe_table(target)
                raise
    finally:
        if fmt == "qcow2":
            os.unlink(tmp)
    _fix_gpt(target)
    devices.reread_partitions(target)
    LOG.info("Image written to %s: %d bytes, %s:%s", disk["name"], written, algo, actual)
    return {
        "root_device": disk["name"],
        "target": target,
        "bytes": written,
        "checksum": f"{algo}:{actual}",
        "disk_format": fmt,
    }
