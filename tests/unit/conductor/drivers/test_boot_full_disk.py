"""Boot files on a full filesystem: a clear error naming the path and ENOSPC, no half-written files.

The state path is a real 64 KiB tmpfs mounted by the test (we run as root); the test skips only if
the kernel refuses the mount.
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from agent.common import exception
from agent.common.config import CONF
from agent.conductor.drivers import dnsmasq
from agent.db import api as db_api

MAC = "52:54:00:aa:bb:01"
MAC_2 = "52:54:00:aa:bb:02"
DIRS = {"tftp_root": "pxe", "http_root": "pxe", "hostsdir": "dnsmasq", "optsdir": "dnsmasq"}


@pytest.fixture
def state(tmp_path, boot_dirs):
    """A 64 KiB tmpfs as the conductor's state path, with the [pxe] and [dnsmasq] dirs on it."""
    mount = tmp_path / "state"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "kiln-test-full", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs refused: {done.stderr.strip()}")
    try:
        for name, group in DIRS.items():
            CONF.set_override(name, str(mount / name), group=group)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)
        mount.rmdir()


def fill(mount) -> str:
    """Fill the filesystem at ``mount`` to the last byte; the filler's path."""
    filler = mount / "filler"
    with open(filler, "wb", buffering=0) as out:
        for size in (4096, 512, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return str(filler)


def snapshot(root) -> dict[str, str]:
    """Every file and link under ``root`` but the filler: {relative path: content or '-> target'}."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if rel != "filler":
                found[rel] = f"-> {os.readlink(path)}" if os.path.islink(path) else open(path).read()
    return found


def assert_names_path_and_enospc(err: exception.BootFileWriteError, mount) -> None:
    text = str(err)
    assert f"Could not write boot file {mount}/" in text
    assert "No space left on device (ENOSPC)" in text and "free space" in text


def assert_each_file_whole(during: dict, before: dict, after: dict) -> None:
    """Each file seen after the failure is its old or its new self: none half-written, no temp left."""
    assert not [name for name in during if os.path.basename(name).startswith(".kiln-")], during
    for name, content in during.items():
        assert content in (before.get(name), after.get(name)), f"{name} is half-written: {content!r}"


def test_pxe_boot_files_on_a_full_state_path(state, make_node, acquire) -> None:
    node = make_node(boot_interface="pxe", ports=[(MAC, True)])
    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {"kiln.api": "http://10.9.0.1:6385"})
    before = snapshot(state)
    assert f"tftp_root/{node}/config" in before and "hostsdir/52-54-00-aa-bb-01" in before
    assert "kiln.api=http://10.9.0.1:6385" in before[f"tftp_root/{node}/config"]

    filler = fill(state)
    with acquire(node) as task, pytest.raises(exception.BootFileWriteError) as err:
        # New content for every file (another MAC's port, another parameter): each write is tried.
        db_api.create_port({"address": MAC_2, "node_id": task.node.id, "pxe_enabled": True})
        task.refresh()
        task.driver.boot.prepare_ramdisk(task, {"kiln.api": "http://10.9.0.2:6385"})
    assert_names_path_and_enospc(err.value, state)
    during = snapshot(state)

    os.unlink(filler)
    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {"kiln.api": "http://10.9.0.2:6385"})
    after = snapshot(state)
    assert "kiln.api=http://10.9.0.2:6385" in after[f"tftp_root/{node}/config"]
    assert "hostsdir/52-54-00-aa-bb-02" in after
    assert during != after  # the full filesystem did stop the writes
    assert_each_file_whole(during, before, after)


def test_ipxe_firmware_larger_than_the_free_space(state, make_node, acquire) -> None:
    """undionly.kpxe (72 KiB) does not fit: the copy fails cleanly, with no partial firmware."""
    node = make_node(boot_interface="ipxe", ports=[(MAC, True)])
    with acquire(node) as task, pytest.raises(exception.BootFileWriteError) as err:
        task.driver.boot.prepare_ramdisk(task, {})
    assert_names_path_and_enospc(err.value, state)
    assert f"{state}/tftp_root/undionly.kpxe" in str(err.value)
    assert snapshot(state) == {}


def test_dnsmasq_host_files_on_a_full_state_path(state) -> None:
    dnsmasq.write_hosts("1be26c0b-03f2-4d2d-ae87-c02d7f33c781", [MAC])
    before = snapshot(state)
    fill(state)
    with pytest.raises(exception.BootFileWriteError) as err:
        dnsmasq.remove_hosts([MAC])  # rewrites the host file as a tombstone
    assert_names_path_and_enospc(err.value, state)
    assert f"{state}/hostsdir/52-54-00-aa-bb-01" in str(err.value)
    assert snapshot(state) == before  # the host file keeps its old line, whole
