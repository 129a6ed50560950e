"""A throwaway Debian 12 host booted with systemd-nspawn, for testing Kiln's installation.

The root filesystem is built once with mmdebstrap into a cache outside the repository
(``$KILN_TEST_CACHE``, default /var/cache/kiln-test) and reused: each boot mounts it read-only
under a tmpfs overlay (``--volatile=overlay``), so whatever a test writes is gone when the
container stops. The container shares the host's network: it reaches the host's PostgreSQL and
RabbitMQ on 127.0.0.1, and the host reaches the services it runs the same way.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("KILN_TEST_CACHE", "/var/cache/kiln-test"))
SUITE = "bookworm"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "iproute2")
#: Database drivers kiln-setup's test installs alongside the requirements (the setup.cfg extras).
EXTRA_WHEELS = ("psycopg2-binary", "PyMySQL")
#: A clean environment for commands in the container (the host's PIP_* settings must not leak in).
CONTAINER_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def missing_tools() -> str | None:
    """Why the container cannot be used here (not root, a missing tool), or None."""
    if os.geteuid() != 0:
        return "systemd-nspawn needs root"
    for tool in ("systemd-nspawn", "mmdebstrap", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install systemd-container mmdebstrap util-linux)"
    return None


@contextmanager
def _cache_lock() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _digest(*parts: str | bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part if isinstance(part, bytes) else part.encode())
    return sha.hexdigest()[:12]


def _prune(keep: Path) -> None:
    """Remove the cache's older builds of the same kind as ``keep`` (other package lists, requirements)."""
    kind = keep.name.rsplit("-", 1)[0]
    for old in CACHE.glob(f"{kind}-*"):
        if old != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def rootfs() -> Path:
    """The cached Debian 12 root filesystem (systemd, python3-venv), built on first use (~1-3 min)."""
    path = CACHE / f"debian12-{_digest(SUITE, *PACKAGES)}"
    with _cache_lock():
        if not path.is_dir():
            partial = path.with_name(path.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            subprocess.run(
                ["mmdebstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(partial)],
                check=True,
                capture_output=True,
                timeout=900,
            )
            partial.rename(path)
            _prune(path)
    return path


def wheelhouse() -> Path:
    """Wheels of requirements.txt and the database drivers, cached by the requirements' content."""
    requirements = (REPO / "requirements.txt").read_bytes()
    path = CACHE / f"wheels-{_digest(requirements, *EXTRA_WHEELS, sys.version)}"
    with _cache_lock():
        if not path.is_dir():
            partial = path.with_name(path.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "wheel",
                    "-q",
                    "-w",
                    str(partial),
                    "-r",
                    str(REPO / "requirements.txt"),
                ]
                + list(EXTRA_WHEELS),
                check=True,
                capture_output=True,
                timeout=900,
            )
            partial.rename(path)
            _prune(path)
    return path


def build_kiln_wheel(dest: Path) -> Path:
    """Build Kiln's wheel from the working tree into ``dest``; its path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dest.glob("kiln-*.whl")
    return wheel


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _is_container_init(pid: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                fields = line.split()
                return len(fields) > 2 and fields[-1] == "1"
    except OSError:
        pass
    return False


class Container:
    """A booted container: run commands in it, stop it."""

    def __init__(self, name: str, root: Path, binds: dict[Path, str], log: Path) -> None:
        self.name = name
        self.log = log
        argv = ["systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--volatile=overlay"]
        argv += ["--directory", str(root), "--machine", name, "--console=pipe"]
        argv += [f"--bind-ro={host}:{inside}" for host, inside in binds.items()]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            self.leader = self._find_leader(timeout=60)
        except BaseException:
            self.stop()
            raise

    def _find_leader(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"systemd-nspawn exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}"
                )
            todo = _children(self.proc.pid)
            while todo:
                pid = todo.pop()
                if _is_container_init(pid):
                    return pid
                todo += _children(pid)
            time.sleep(0.1)
        raise AssertionError(f"no init process in container {self.name} after {timeout} s")

    def run(self, command: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``command`` (a shell line) inside as root; AssertionError with its output if it fails."""
        argv = ["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-p", "--", "/bin/sh", "-c", command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=CONTAINER_ENV)
        if check and done.returncode != 0:
            raise AssertionError(
                f"in {self.name}: {command!r} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done

    def wait_booted(self, timeout: float = 120) -> str:
        """Wait until systemd finished starting up; its state (running or degraded)."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            # Until systemd listens on its private socket, systemctl fails with "Failed to connect to bus".
            done = self.run("systemctl is-system-running", check=False)
            state = done.stdout.strip() or done.stderr.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.5)
        raise AssertionError(f"{self.name} did not finish booting in {timeout} s: {state!r}")

    def stop(self, timeout: float = 60) -> int:
        """Shut the container down (SIGTERM to nspawn halts it cleanly); nspawn's exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # the second signal: immediate termination
                self.proc.wait(30)
        return self.proc.returncode
