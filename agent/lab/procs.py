"""The lab's background processes: started detached, recorded with their start time, stopped by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from agent.lab.state import State


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat): tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stream:
            text = stream.read()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]


def start(
    state: State, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.Popen:
    """Start ``argv`` in its own session, output to logs/NAME.log in the lab directory; record it."""
    logs = state.directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                cwd=cwd,
            )
        except FileNotFoundError as exc:
            raise RuntimeError(f"cannot start the lab's {name}: {exc}; see README 'The lab'") from None
    state.add("processes", {"name": name, "pid": proc.pid, "start": start_time(proc.pid), "argv": argv})
    return proc


def wait_until(
    what: str, ready: Callable[[], bool], proc: subprocess.Popen, log: Path, timeout: float
) -> None:
    """Poll ``ready`` until true; RuntimeError naming ``what`` and its log on exit or time-out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"the lab's {what} exited with {proc.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the lab's {what} was not ready within {timeout:.0f} s; see {log}")
        time.sleep(0.2)


def stop(entry: dict, timeout: float = 10.0) -> bool:
    """Stop a recorded process and its group (TERM, then KILL) if still the one recorded; whether it ran.

    Each lab process leads a session of its own, so its group holds its children too (vbmcd's BMCs,
    the conductor's heartbeat process) and nothing else.
    """
    pid = int(entry["pid"])
    if start_time(pid) is None or start_time(pid) != entry.get("start"):
        return False  # gone, or the pid now belongs to another process
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while running(entry) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)  # what is left of the group
    except ProcessLookupError:
        pass
    time.sleep(0.1)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: init reaps it


def running(entry: dict) -> bool:
    """Whether the recorded process still runs (and is the one recorded)."""
    pid = int(entry["pid"])
    status = Path(f"/proc/{pid}/status")
    try:
        zombie = "\nState:\tZ" in status.read_text()
    except OSError:
        return False
    return not zombie and start_time(pid) == entry.get("start")
