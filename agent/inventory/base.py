"""A root-relative file reader that records every problem instead of raising.

Every collector in :mod:`agent.inventory` reads through one :class:`Root`.
A missing, unreadable or garbled file yields ``None`` and an entry in
``Root.errors``; nothing here raises on bad host data.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field


@dataclass
class Problem:
    """One file that could not be used, and why."""

    path: str
    error: str

    def as_dict(self) -> dict:
        """Return the problem as a JSON-ready dict."""
        return {"path": self.path, "error": self.error}


@dataclass
class Root:
    """A host root (``/`` or a captured tree) and the problems met reading it."""

    path: str = "/"
    errors: list[Problem] = field(default_factory=list)
    cache: dict = field(default_factory=dict)  # collectors share parsed results here

    def __post_init__(self) -> None:
        self.path = os.path.abspath(self.path)

    # -- paths ---------------------------------------------------------
    def host(self, rel: str) -> str:
        """Return the on-disk path of a host path such as ``/sys/block``."""
        return os.path.join(self.path, rel.lstrip("/"))

    def strip(self, real: str) -> str:
        """Turn an on-disk path back into a host path."""
        if self.path != "/" and (real == self.path or real.startswith(self.path + "/")):
            real = real[len(self.path) :] or "/"
        return real

    def note(self, rel: str, error: str) -> None:
        """Record a problem with a host path."""
        self.errors.append(Problem(rel, error))

    # -- reading -------------------------------------------------------
    def exists(self, rel: str) -> bool:
        """Say whether a host path exists (following links)."""
        return os.path.exists(self.host(rel))

    def read_bytes(self, rel: str, *, optional: bool = False, limit: int = 1 << 20) -> bytes | None:
        """Read a file's bytes; ``None`` and a recorded problem when that fails."""
        try:
            # Unbuffered: a buffered open sets up a large buffer per file, which
            # dominates the cost of reading thousands of tiny sysfs attributes.
            with open(self.host(rel), "rb", buffering=0) as f:
                data = f.read(4096)
                if len(data) == 4096:
                    chunks = [data]
                    while (size := sum(map(len, chunks))) < limit and (
                        more := f.read(min(65536, limit - size))
                    ):
                        chunks.append(more)
                    data = b"".join(chunks)
                return data
        except FileNotFoundError:
            if not optional:
                self.note(rel, "missing")
        except OSError as exc:
            # Some sysfs attributes (a down NIC's speed) fail with EINVAL by design.
            if not (optional and exc.errno in (errno.EINVAL, errno.ENODEV, errno.ENOENT)):
                self.note(rel, _describe(exc))
        return None

    def read(self, rel: str, *, optional: bool = False) -> str | None:
        """Read a text attribute, stripped; ``None`` when missing or not text."""
        data = self.read_bytes(rel, optional=optional)
        if data is None:
            return None
        if b"\x00" in data.rstrip(b"\x00"):
            self.note(rel, "garbled: contains NUL bytes")
            return None
        try:
            text = data.rstrip(b"\x00").decode("utf-8")
        except UnicodeDecodeError:
            text = data.rstrip(b"\x00").decode("latin-1")
            if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
                self.note(rel, "garbled: not text")
                return None
        return text.strip()

    def read_int(self, rel: str, base: int = 10, *, optional: bool = False) -> int | None:
        """Read an integer attribute (``base`` 0 accepts ``0x`` prefixes)."""
        text = self.read(rel, optional=optional)
        if text is None:
            return None
        try:
            return int(text.split()[0], base)
        except (ValueError, IndexError):
            self.note(rel, f"garbled: expected an integer, got {text[:40]!r}")
            return None

    def read_hex(self, rel: str, *, optional: bool = False) -> int | None:
        """Read a ``0x``-prefixed hexadecimal attribute such as a PCI id."""
        return self.read_int(rel, 16, optional=optional)

    def listdir(self, rel: str, *, optional: bool = False) -> list[str]:
        """List a directory, sorted; empty and recorded when it cannot be read."""
        try:
            return sorted(os.listdir(self.host(rel)))
        except FileNotFoundError:
            if not optional:
                self.note(rel, "missing")
        except OSError as exc:
            self.note(rel, _describe(exc))
        return []

    def readlink_name(self, rel: str) -> str | None:
        """Return the last component a symlink points to (a driver's name), or None."""
        try:
            return os.path.basename(os.readlink(self.host(rel)).rstrip("/")) or None
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not a link
                self.note(rel, _describe(exc))
            return None

    def realpath(self, rel: str) -> str | None:
        """Resolve a host path inside the root; None when it loops or escapes."""
        try:
            real = os.path.realpath(self.host(rel), strict=True)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.note(rel, _describe(exc))
            return None
        if self.path != "/" and not (real == self.path or real.startswith(self.path + "/")):
            self.note(rel, "link points outside the root")
            return None
        return self.strip(real)


def _describe(exc: OSError) -> str:
    """Name an OS error briefly: 'ELOOP: Too many levels of symbolic links'."""
    code = errno.errorcode.get(exc.errno or 0, "error")
    return f"{code}: {exc.strerror or exc}"


def parse_cpulist(text: str | None) -> list[int] | None:
    """Expand a kernel cpulist ('0-3,8,10-11') into CPU numbers; None when garbled."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return []
    cpus: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            start, end = int(lo), int(hi) if hi else int(lo)
            if end < start or end - start > 65536:
                return None
            cpus.extend(range(start, end + 1))
    except ValueError:
        return None
    return cpus
