"""kiln-api and kiln-conductor as real processes over RabbitMQ (127.0.0.1:5672) and SQLite or PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
RABBIT = "rabbit://guest:guest@127.0.0.1:5672/"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rabbit_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _wait_log(path: Path, text: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}: {path.read_text()[-2000:]}")
        if text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{text!r} did not appear in {path} within {timeout} s")


@pytest.fixture(scope="module")
def kiln(tmp_path_factory):
    """Start a conductor and kiln-api; yield the API's base URL."""
    if not _rabbit_up():
        pytest.skip("RabbitMQ is not listening on 127.0.0.1:5672 (rabbitmq-server -detached)")
    tmp = tmp_path_factory.mktemp("kiln")
    port = _free_port()
    exchange = f"kiln-test-{uuid.uuid4().hex[:8]}"
    conf = tmp / "kiln.conf"
    conf.write_text(
        f"[DEFAULT]\ntransport_url = {RABBIT}\ncontrol_exchange = {exchange}\nstate_path = {tmp}\n"
        f"[database]\nconnection = sqlite:///{tmp}/kiln.sqlite\n"
        f"[conductor]\nhost = func-conductor\nheartbeat_interval = 2\n"
        f"[api]\nhost_ip = 127.0.0.1\nport = {port}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    logs = {name: open(tmp / f"{name}.log", "w") for name in ("conductor", "api")}  # noqa: SIM115
    subprocess.run(
        [sys.executable, "-m", "agent.cmd.dbsync", "--config-file", str(conf), "upgrade"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    conductor = subprocess.Popen(
        [sys.executable, "-m", "agent.cmd.conductor", "--config-file", str(conf)],
        cwd=REPO,
        env=env,
        stdout=logs["conductor"],
        stderr=subprocess.STDOUT,
    )
    _wait_log(tmp / "conductor.log", "kiln-conductor func-conductor serving RPC", conductor)
    api = subprocess.Popen(
        [sys.executable, "-m", "agent.cmd.api", "--config-file", str(conf)],
        cwd=REPO,
        env=env,
        stdout=logs["api"],
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/", api)
        yield url
    finally:
        for proc in (api, conductor):
            proc.terminate()
        for proc in (api, conductor):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for handle in logs.values():
            handle.close()
