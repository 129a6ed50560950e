"""Hardware watch triggers: source choice, periodic rescan, and real kernel uevents in a private netns."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading

import pytest

from agent.node.watch import HardwareWatcher, monitor_source

REPO = os.path.join(os.path.dirname(__file__), "..", "..", "..")


def test_source_follows_udevd_and_the_root(tmp_path):
    control = tmp_path / "control"
    assert monitor_source("/", str(control)) == "kernel"
    control.write_text("")
    assert monitor_source("/", str(control)) == "udev"
    assert monitor_source(str(tmp_path), str(control)) is None  # a captured tree has no events


def test_rescan_fires_periodically_and_survives_a_failing_callback():
    done = threading.Event()
    reasons = []

    def on_change(reason: str) -> None:
        reasons.append(reason)
        if len(reasons) == 1:
            raise RuntimeError("collector blew up")
        if len(reasons) == 3:
            done.set()

    watcher = HardwareWatcher("/nonexistent-root", on_change, interval=0.01, source=None)
    watcher.start()
    try:
        assert done.wait(10)
    finally:
        watcher.stop()
    assert watcher.source is None
    assert reasons[:3] == ["periodic rescan"] * 3


SCRIPT = """
import sys, threading
sys.path.insert(0, sys.argv[1])
from pyroute2 import IPRoute
from agent.node.watch import HardwareWatcher
got, reasons = threading.Event(), []
w = HardwareWatcher("/", lambda r: (reasons.append(r), got.set()), interval=1000, settle=0.2, source="kernel")
w.start()
assert w.source == "kernel", "no kernel uevent monitor"
with IPRoute() as ipr:
    ipr.link("add", ifname="kwatch0", kind="veth", peer="kwatch1")
ok = got.wait(20)
w.stop()
print(reasons[0] if ok else "NO EVENT")
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare is not installed")
def test_kernel_uevents_trigger_without_udevd():
    """A veth pair created in a network namespace of this test fires the kernel uevent monitor."""
    result = subprocess.run(
        ["unshare", "--net", sys.executable, "-W", "ignore", "-c", SCRIPT, os.path.abspath(REPO)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0 and "Operation not permitted" in result.stderr:
        pytest.skip(f"cannot create a network namespace here: {result.stderr.strip()[-200:]}")
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("kernel: add net kwatch"), line
