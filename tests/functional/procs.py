"""Start Kiln's services as real processes for functional tests: a throwaway PostgreSQL database,
kiln-dbsync, kiln-conductor, kiln-api and kiln-agent, each with its own config file and log."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import oslo_messaging as messaging
import sqlalchemy
from oslo_config import cfg

REPO = Path(__file__).resolve().parents[2]
#: This test run's own RabbitMQ vhost, made and removed by tests/functional/conftest.py:
#: oslo.messaging names queues by topic, so two runs (or a running Kiln) on one vhost would
#: answer each other's calls.
RABBIT_VHOST = f"kiln-test-{uuid.uuid4().hex[:12]}"
RABBIT_URL = f"rabbit://guest:guest@127.0.0.1:5672/{RABBIT_VHOST}"
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1"
RABBITMQCTL = shutil.which("rabbitmqctl")


def reachable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=3).close()
        return True
    except OSError:
        return False


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that nothing listens on right now (TCP, or UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_answers(url: str) -> bool:
    """Whether ``url`` answers a GET with a success status (an error status or no answer raises)."""
    with urllib.request.urlopen(url, timeout=2):
        return True


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Create database kiln_ft_<random> on the local PostgreSQL; yield its URL; drop it afterwards."""
    name = f"kiln_ft_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        yield f"{POSTGRES}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def write_conf(path: Path, sections: dict[str, dict]) -> Path:
    """Write an ini file of ``{section: {option: value}}``."""
    lines: list[str] = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in options.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}


def dbsync(conf: Path) -> None:
    """Run ``kiln-dbsync upgrade`` with ``conf``; raise on failure."""
    subprocess.run(
        [sys.executable, "-m", "agent.cmd.dbsync", "--config-file", str(conf), "upgrade"],
        cwd=REPO,
        env=_env(),
        check=True,
        capture_output=True,
        timeout=120,
    )


def start(module: str, conf: Path, log: Path) -> subprocess.Popen:
    """Start ``python -m <module> --config-file conf`` with its output in ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, "--config-file", str(conf), "--log-file", str(log)],
            cwd=REPO,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM ``proc`` and wait for it (SIGKILL after ``timeout``); its exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def wait_for(predicate: Callable[[], object], timeout: float, what: str, procs: tuple = ()) -> object:
    """Poll ``predicate`` until it is truthy (returned); AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            assert proc.poll() is None, f"{proc.args} exited with {proc.returncode} while waiting for {what}"
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - not there yet (row missing, broker down, ...)
            value = None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_for_log(path: Path, text: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``text`` stands in ``proc``'s log ``path``; AssertionError with the log's tail if not."""
    try:
        wait_for(lambda: text in read(path), timeout, f"{text!r} in {path}", (proc,))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- {path}\n{read(path)[-2000:]}") from None


def rabbit_transport(url: str = RABBIT_URL) -> messaging.Transport:
    """Register Kiln's options on the global CONF (parsed once, no arguments); a transport to ``url``."""
    from agent.common import config, rpc

    config.register_opts(cfg.CONF)
    try:
        cfg.CONF([], project="kiln")
    except cfg.Error:
        pass  # parsed already by an earlier test
    return rpc.get_transport(cfg.CONF, url=url)


def rabbitmqctl(*args: str) -> None:
    """Run rabbitmqctl with ``args``; a failure raises with what rabbitmqctl said."""
    if RABBITMQCTL is None:
        raise RuntimeError("rabbitmqctl is not installed: apt-get install -y rabbitmq-server")
    proc = subprocess.run([RABBITMQCTL, "-q", *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        said = proc.stderr.strip() or proc.stdout.strip()
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed (exit {proc.returncode}): {said}")


def add_vhost(vhost: str, user: str = "guest") -> None:
    """Make RabbitMQ vhost ``vhost`` with all rights on it for ``user``."""
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")


def delete_vhost(vhost: str) -> None:
    """Remove RabbitMQ vhost ``vhost`` with its queues and exchanges."""
    rabbitmqctl("delete_vhost", vhost)


def read(path: Path | str) -> str:
    """A log file's text ('' when missing)."""
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""
