"""NVIDIA Xid errors from the kernel log, and the boot they belong to.

The one source is ``<root>/dev/kmsg``, in the kernel's own record format
(``prio,seq,usec,flags;message``, continuation lines starting with a space):

- On a live host it is the kernel's ring buffer, a character device. It is read with
  ``O_NONBLOCK`` one record per ``read()`` until ``EAGAIN``, so it never waits for new
  messages; records overwritten while reading (``EPIPE``) are skipped. No subprocess
  (``dmesg``, ``journalctl -k``) is run.
- In a captured tree kiln-capture-sysfs writes the same records into a plain file
  ``dev/kmsg`` (:func:`read_records` then :func:`write_capture`), so the tree reproduces
  the live inventory. A hand-made fixture writes that file the same way.

Timestamps are seconds since boot (the kernel's monotonic clock). Every record in the ring
belongs to the current boot, identified by ``/proc/sys/kernel/random/boot_id`` and dated by
``/proc/stat``'s ``btime``: a later step (cleaning) filters "since the last boot" by comparing
boot ids, and "since time T" with ``boot_time + seconds``. ``complete`` says whether the first
record read is the boot's first (sequence 0); when it is not, the ring has wrapped and older
Xids of this boot are lost.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from typing import NamedTuple

from agent.inventory.base import Root
from agent.inventory.model import KernelLog, XidEvent

KMSG = "/dev/kmsg"
MAX_BYTES = 16 << 20  # a ring buffer is 256 KiB to a few MiB; stop well past that
MAX_XIDS_PER_GPU = 64  # an Xid storm (Xid 13 in a loop) keeps only the latest

# "NVRM: Xid (PCI:0000:18:00): 79, pid=1234, name=python3, GPU has fallen off the bus."
_XID_RE = re.compile(
    r"NVRM: Xid \(PCI:([0-9a-fA-F]{1,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?)\): (\d+),?\s*(.*)"
)


class Record(NamedTuple):
    """One kernel log record."""

    seq: int
    seconds: float
    message: str
    prio: int = 6  # syslog facility * 8 + level, as the record's first field


def parse_record(line: str) -> Record | None:
    """Parse one ``prio,seq,usec,flags;message`` line; None when it is not one."""
    head, sep, message = line.partition(";")
    if not sep:
        return None
    fields = head.split(",")
    if len(fields) < 3:
        return None
    try:
        prio, seq, usec = int(fields[0]), int(fields[1]), int(fields[2])
    except ValueError:
        return None
    if seq < 0 or usec < 0 or prio < 0:
        return None
    return Record(seq, usec / 1e6, message.rstrip("\n"), prio)


def read_records(root: Root) -> list[Record] | None:
    """Return the kernel log records under ``root``; None (and an error) when it cannot be read."""
    path = root.host(KMSG)
    try:
        is_device = stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        is_device = False  # a missing or looping path: read_bytes below names the problem
    if is_device:
        lines = _read_device(root, path)
    else:
        data = root.read_bytes(KMSG, limit=MAX_BYTES)
        if data is None:
            return None
        lines = data.decode("utf-8", "replace").split("\n")
    if lines is None:
        return None
    records, bad = [], 0
    for line in lines:
        if not line or line.startswith(" "):
            continue  # continuation lines (" SUBSYSTEM=pci") carry no message of their own
        record = parse_record(line)
        if record is None:
            bad += 1
        else:
            records.append(record)
    if bad:
        root.note(KMSG, f"garbled: {bad} line(s) not in the kernel's 'prio,seq,usec,flags;message' format")
    return records


def _read_device(root: Root, path: str) -> list[str] | None:
    """Read the live ring buffer without waiting: one record per read() until EAGAIN."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        root.note(
            KMSG, f"{errno.errorcode.get(exc.errno or 0, 'error')}: {exc.strerror} (reading it needs root)"
        )
        return None
    lines: list[str] = []
    total = 0
    try:
        while total < MAX_BYTES:
            try:
                chunk = os.read(fd, 16384)
            except BlockingIOError:
                break  # EAGAIN: the end of the buffer
            except OSError as exc:
                if exc.errno == errno.EPIPE:
                    continue  # records overwritten under us: go on with the next one
                root.note(KMSG, f"{errno.errorcode.get(exc.errno or 0, 'error')}: {exc.strerror}")
                break
            if not chunk:
                break
            total += len(chunk)
            lines.extend(chunk.decode("utf-8", "replace").split("\n"))
    finally:
        os.close(fd)
    return lines


def write_capture(records: list[Record], path: str) -> None:
    """Write records as a plain ``dev/kmsg`` file of a captured tree (flags as '-')."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(f"{r.prio},{r.seq},{round(r.seconds * 1e6)},-;{r.message}\n")


def normalize_xid_address(text: str) -> str:
    """Turn the driver's 'PCI:0000:18:00' (no function) into '0000:18:00.0'."""
    domain, bus, rest = text.lower().split(":", 2)
    dev, _, fn = rest.partition(".")
    return f"{int(domain, 16):04x}:{bus}:{dev}.{fn or '0'}"


def parse_xid(message: str) -> tuple[str, XidEvent] | None:
    """Return (pci_address, {xid, message}) for an 'NVRM: Xid' message; None for other messages."""
    match = _XID_RE.search(message)
    if not match:
        return None
    address, number, rest = match.groups()
    return normalize_xid_address(address), {"xid": int(number), "message": rest.strip(), "seconds": 0.0}


def read_kernel_log(root: Root) -> tuple[KernelLog, dict[str, list[XidEvent]]]:
    """Read the kernel log once per root: its summary and the Xids by PCI address (oldest first)."""
    cached = root.cache.get("kmsg")
    if cached is not None:
        return cached
    records = read_records(root)
    xids: dict[str, list[XidEvent]] = {}
    count = None
    if records is not None:
        count = 0
        for record in records:
            found = parse_xid(record.message)
            if found:
                address, event = found
                event["seconds"] = round(record.seconds, 6)
                xids.setdefault(address, []).append(event)
                count += 1
    summary: KernelLog = {
        "source": KMSG,
        "boot_id": root.read("/proc/sys/kernel/random/boot_id") or None,
        "boot_time": _boot_time(root),
        "records": len(records) if records is not None else None,
        "complete": (records[0].seq == 0) if records else None,
        "xid_count": count,
        "unmatched_xids": None if records is None else [],
    }
    root.cache["kmsg"] = (summary, xids)
    return summary, xids


def _boot_time(root: Root) -> int | None:
    """The boot's wall-clock time from /proc/stat's 'btime' line (seconds since the epoch)."""
    text = root.read("/proc/stat")
    if text is None:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "btime":
            try:
                return int(value.strip())
            except ValueError:
                break
    root.note("/proc/stat", "garbled: no 'btime N' line")
    return None


def attach_xids(root: Root, gpus: list[dict]) -> KernelLog:
    """Put each NVIDIA GPU's Xids into its health; list the Xids of unknown addresses; return the summary."""
    summary, xids = read_kernel_log(root)
    addresses = set()
    for gpu in gpus:
        if gpu["vendor_id"] != "0x10de":
            continue
        addresses.add(gpu["pci_address"])
        events = xids.get(gpu["pci_address"])
        if summary["records"] is None:
            gpu["health"]["xid_errors"] = None
        else:
            gpu["health"]["xid_errors"] = [dict(e) for e in (events or [])[-MAX_XIDS_PER_GPU:]]  # type: ignore[misc]
    if summary["unmatched_xids"] is not None:
        summary["unmatched_xids"] = [
            dict(e, pci_address=address)
            for address in sorted(xids)
            if address not in addresses
            for e in xids[address][-MAX_XIDS_PER_GPU:]
        ]
    return summary
