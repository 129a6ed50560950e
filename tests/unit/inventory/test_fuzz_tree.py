"""Property tests: garbage, truncation, removal and link loops never make the inventory raise."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.inventory import base
from agent.inventory.collect import collect
from tests.unit.node.conftest import clone_tree

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")
TREES = sorted(
    t
    for t in ("host-kvm", "h200-vm", "hgx-h100", "mi300x", "storage-sas", "vm")
    if os.path.isdir(os.path.join(FIXTURES, t))
)

ACTIONS = ("garbage", "nul", "truncate", "remove", "loop", "dir")


class _Recorder:
    """Record which files a collect() run reads (real path -> host path, and how)."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, str]] = {}

    def __enter__(self) -> _Recorder:
        self._orig = base.Root.read_bytes, base.Root.read
        orig_bytes, orig_read = self._orig
        seen = self.seen

        def read_bytes(root, rel, **kw):
            seen.setdefault(os.path.realpath(root.host(rel)), (rel, "bytes"))
            return orig_bytes(root, rel, **kw)

        def read(root, rel, **kw):
            seen[os.path.realpath(root.host(rel))] = (rel, "text")
            return orig_read(root, rel, **kw)

        base.Root.read_bytes, base.Root.read = read_bytes, read
        return self

    def __exit__(self, *exc) -> None:
        base.Root.read_bytes, base.Root.read = self._orig


def _reads(tree: str) -> dict[str, tuple[str, str]]:
    """Run a pristine inventory and map each file it read (real path) to (host path, how it was read)."""
    with _Recorder() as rec:
        collect(tree, use_nvml=False)
    return rec.seen


_READ_CACHE: dict[str, dict] = {}


def _files_read(name: str) -> list[tuple[str, str, str]]:
    src = os.path.join(FIXTURES, name)
    if name not in _READ_CACHE:
        _READ_CACHE[name] = _reads(src)
    real_src = os.path.realpath(src)
    out = []
    for real, (rel, how) in sorted(_READ_CACHE[name].items()):
        if real.startswith(real_src + os.sep) and os.path.isfile(real):
            out.append((os.path.relpath(real, real_src), rel, how))
    return out


def _detach(path: str) -> None:
    """Give ``path`` an inode of its own: the scratch tree hard-links the fixture's files."""
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    with open(path, "wb") as f:
        f.write(data)


def _mutate(path: str, action: str, garbage: bytes) -> None:
    _detach(path)
    if action == "garbage":
        with open(path, "wb") as f:
            f.write(garbage)
    elif action == "nul":
        with open(path, "wb") as f:
            f.write(b"12\x00\xff" + garbage + b"\x00zz")
    elif action == "truncate":
        with open(path, "rb+") as f:
            f.truncate(len(f.read()) // 2)
    elif action == "remove":
        os.unlink(path)
    elif action == "loop":
        os.unlink(path)
        os.symlink(os.path.basename(path), path)
    elif action == "dir":
        os.unlink(path)
        os.mkdir(path)


@pytest.mark.skipif(not TREES, reason="no fixture trees present")
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tree=st.sampled_from(TREES or ["none"]),
    picks=st.lists(
        st.tuples(st.integers(0, 10**6), st.sampled_from(ACTIONS), st.binary(max_size=64)), max_size=6
    ),
)
def test_mutated_tree_never_raises_and_records_errors(tree: str, picks) -> None:
    """Whatever happens to the files the inventory reads, it returns and names each broken file."""
    files = _files_read(tree)
    assert files, f"the inventory read no file of {tree}"
    dst = _work_copy(tree)
    must_report: dict[str, str] = {}
    done: list[str] = []
    try:
        for idx, action, garbage in picks:
            relfile, hostpath, how = files[idx % len(files)]
            if relfile in done:
                continue
            done.append(relfile)
            _mutate(os.path.join(dst, relfile), action, garbage)
            # A loop or a directory can never be read; NUL bytes in a text attribute are never valid.
            if action in ("loop", "dir") or (action == "nul" and how == "text"):
                must_report[os.path.realpath(os.path.join(dst, relfile))] = hostpath
        with _Recorder() as rec:
            inv = collect(dst, use_nvml=False)
    finally:
        for relfile in done:
            _restore(tree, relfile)
    assert set(inv) >= {"system", "cpu", "memory", "disks", "nics", "gpus", "errors"}
    reported = {e["path"] for e in inv["errors"]}
    # A broken file the run still read must be named; one it no longer needed (another mutation
    # changed what it had to read) may go unmentioned.
    read_now = {rel for rel, _ in rec.seen.values()}
    missing = sorted(p for p in must_report.values() if p in read_now and p not in reported)
    assert not missing, f"broken files not reported: {missing}; reported {sorted(reported)[:20]}"


_WORK: dict[str, str] = {}


def _work_copy(tree: str) -> str:
    """One scratch copy of a tree per test session; examples mutate it and restore what they touched."""
    if tree not in _WORK:
        tmp = tempfile.mkdtemp(prefix="kiln-fuzz-")
        atexit.register(shutil.rmtree, tmp, True)
        _WORK[tree] = os.path.join(tmp, tree)
        clone_tree(os.path.join(FIXTURES, tree), _WORK[tree])
    return _WORK[tree]


def _restore(tree: str, relfile: str) -> None:
    """Put one file of the scratch copy back as the fixture has it."""
    path = os.path.join(_WORK[tree], relfile)
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
    shutil.copy2(os.path.join(FIXTURES, tree, relfile), path)


@pytest.mark.skipif(not TREES, reason="no fixture trees present")
@pytest.mark.parametrize("tree", TREES)
def test_device_directory_loop_is_survived(tree: str, tmp_path) -> None:
    """A symlink loop in place of a whole class directory is reported, not followed forever."""
    dst = tmp_path / tree
    clone_tree(os.path.join(FIXTURES, tree), str(dst))
    net = dst / "sys" / "class" / "net"
    if net.exists():
        shutil.rmtree(net) if net.is_dir() and not net.is_symlink() else net.unlink()
    net.parent.mkdir(parents=True, exist_ok=True)
    os.symlink("net", net)
    inv = collect(str(dst), use_nvml=False)
    assert inv["nics"] == []
    assert any(e["path"].startswith("/sys/class/net") and "ELOOP" in e["error"] for e in inv["errors"])
