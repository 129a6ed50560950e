"""Test helpers for the agent steps: a real HTTP image server on 127.0.0.1, disk files, GPT tables."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import subprocess
import threading

MIB = 1 << 20


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


class ImageServer:
    """Serves a directory over HTTP on 127.0.0.1 (a real socket, a real server thread)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        handler = functools.partial(_QuietHandler, directory=directory)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, name: str) -> str:
        """The URL of ``name`` in the served directory."""
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


def make_disk(path: str, size: int) -> str:
    """A sparse file standing in for a disk."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def make_gpt(path: str, *partitions: str) -> None:
    """Write a new GPT on ``path`` holding ``partitions`` (sfdisk lines, e.g. ``start=2048, size=20M``)."""
    script = "label: gpt\n" + "".join(line + "\n" for line in partitions)
    subprocess.run(
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", path],
        input=script,
        text=True,
        check=True,
        capture_output=True,
    )


def make_raw_image(path: str, size: int, seed: bytes = b"kiln") -> str:
    """A raw whole-disk image: a GPT with one partition and non-zero data throughout."""
    make_disk(path, size)
    make_gpt(path, 'start=2048, name="root"')
    block = hashlib.sha512(seed).digest() * (MIB // 64)
    with open(path, "r+b") as f:
        f.seek(2 * MIB)
        while f.tell() + MIB <= size - MIB:
            f.write(block)
    return path


def digest(path: str, algo: str = "sha256", length: int | None = None) -> str:
    """Hex digest of a file's first ``length`` bytes (all of it by default)."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        left = length if length is not None else os.path.getsize(path)
        while left > 0:
            chunk = f.read(min(MIB, left))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def table(path: str) -> dict | None:
    """sfdisk's JSON view of the partition table, None when there is none."""
    proc = subprocess.run(["sfdisk", "--json", path], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return json.loads(proc.stdout)["partitiontable"]


def signatures(path: str, offset: int = 0) -> dict:
    """blkid's probe at ``offset``."""
    proc = subprocess.run(
        ["blkid", "-p", "-o", "export", "-O", str(offset), path], capture_output=True, text=True
    )
    out = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    out.pop("DEVNAME", None)
    return out


def read_range(path: str, offset: int, length: int) -> bytes:
    """Bytes [offset, offset+length) of a file or device."""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)
