"""Private RabbitMQ and PostgreSQL instances that fault tests may stop and restart.

The machine's shared RabbitMQ (5672) and PostgreSQL (5432) serve other test runs at the same
time, so a fault test never touches them: it starts its own node or cluster on free ports in a
temporary directory, restarts that, and removes it (processes and files) afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.functional.procs import free_port, reachable


def _wait_port(port: int, up: bool, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reachable(port) == up:
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} on port {port} did not {'start' if up else 'stop'} within {timeout} s")


class PrivateRabbit:
    """A RabbitMQ node of its own (no plugins) on a free port; start, stop, restart, remove.

    ``add_file`` puts a file (a certificate) in its directory, readable by the broker, and
    ``configure`` adds rabbitmq.conf lines (a TLS listener), both before ``start``.
    """

    def __init__(self) -> None:
        if shutil.which("rabbitmq-server") is None:
            raise RuntimeError("rabbitmq-server is not installed: apt-get install -y rabbitmq-server")
        self.dir = Path(tempfile.mkdtemp(prefix="kiln-fault-rabbit-"))
        self.port = free_port()
        self.node = f"kiln-fault-{uuid.uuid4().hex[:8]}@localhost"
        plugins = self.dir / "enabled_plugins"
        plugins.write_text("[].\n")
        conf = self.dir / "rabbitmq.conf"  # not the machine's, whose listener is the shared 5672
        conf.write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        if os.geteuid() == 0:  # rabbitmq-server drops to user rabbitmq: its files must be writable
            pw = pwd.getpwnam("rabbitmq")
            for path in (self.dir, plugins, conf):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_CONFIG_FILE": str(conf),
        }
        self.url = f"rabbit://guest:guest@127.0.0.1:{self.port}/"

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("rabbitmq")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def add_file(self, name: str, data: bytes) -> Path:
        """Write ``data`` to ``name`` in the node's directory (mode 0600, owned by the broker's user)."""
        path = self.dir / name
        path.write_bytes(data)
        path.chmod(0o600)
        self._own(path)
        return path

    def configure(self, lines: str) -> None:
        """Append ``lines`` to the node's rabbitmq.conf (before ``start``)."""
        conf = self.dir / "rabbitmq.conf"
        with conf.open("a", encoding="utf-8") as f:
            f.write(lines.rstrip("\n") + "\n")

    def _ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        argv = ["rabbitmqctl", "-n", self.node, *args]
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)

    def start(self, timeout: float = 60) -> None:
        """Start the node and wait until it accepts AMQP connections."""
        server = ["rabbitmq-server", "-detached"]
        subprocess.run(server, env=self.env, check=True, capture_output=True, timeout=30)
        pid = str(self.dir / "rabbit.pid")
        wait = self._ctl("wait", pid, "--timeout", str(int(timeout)), timeout=timeout + 5)
        if wait.returncode != 0:
            raise RuntimeError(f"private RabbitMQ {self.node} did not start: {wait.stderr or wait.stdout}")
        _wait_port(self.port, True, timeout, f"RabbitMQ {self.node}")

    def stop(self) -> None:
        """Stop the node (its queues' messages that were not persistent are gone)."""
        out = self._ctl("stop")
        if out.returncode != 0 and reachable(self.port):
            raise RuntimeError(f"rabbitmqctl -n {self.node} stop failed: {out.stderr or out.stdout}")
        _wait_port(self.port, False, 30, f"RabbitMQ {self.node}")

    def remove(self) -> None:
        """Stop the node if it runs and delete its files."""
        if reachable(self.port):
            self._ctl("stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of its own (trust auth) on a free port; start, stop, restart, remove."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL's initdb is not installed: apt-get install -y postgresql")
        self.bin = Path(found[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="kiln-fault-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = None if os.geteuid() != 0 else "postgres"  # initdb refuses to run as root
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd: str, timeout: float = 60) -> None:
        argv = [str(self.bin / cmd[0]), *cmd[1:]]
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            said = out.stderr or out.stdout
            raise RuntimeError(f"{cmd[0]} failed (exit {out.returncode}): {said}")

    def init(self) -> None:
        """Create the cluster (superuser postgres, trust authentication)."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")

    def _pg_ctl(self, action: str) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.dir / "pg.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", log, "-w", "-m", "fast", action)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._pg_ctl("start")
        _wait_port(self.port, True, 30, "PostgreSQL")

    def stop(self) -> None:
        """Stop the server (fast: open connections are cut)."""
        self._pg_ctl("stop")
        _wait_port(self.port, False, 30, "PostgreSQL")

    def remove(self) -> None:
        """Stop the server if it runs and delete its files."""
        if reachable(self.port):
            try:
                self.stop()
            except (RuntimeError, AssertionError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
