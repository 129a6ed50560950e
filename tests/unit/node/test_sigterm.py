"""SIGTERM on a real kiln-agent process: it tells systemd it stops and exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

from tests.unit.node.agent_process import start_agent, write_config

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")


def _root() -> str:
    tree = os.path.join(FIXTURES, "hgx-h100")
    return tree if os.path.isdir(tree) else "/"


def _recv_until(sock: socket.socket, needle: bytes) -> list[bytes]:
    seen = []
    while True:
        msg = sock.recv(4096)
        seen.append(msg)
        if needle in msg:
            return seen


def test_sigterm_while_waiting_for_a_conductor(tmp_path):
    notify_path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    sock.settimeout(60)
    # No conductor listens on the in-process memory transport: the agent keeps retrying lookup.
    conf = write_config(
        str(tmp_path / "kiln.conf"),
        "kombu+memory:////",
        {"root": _root(), "state_dir": tmp_path / "state", "lookup_timeout": 1, "backoff_initial": 0.2},
    )
    log = str(tmp_path / "agent.log")
    proc = start_agent(conf, log, env={"NOTIFY_SOCKET": notify_path})
    try:
        seen = _recv_until(sock, b"STATUS=looking up this node on the conductor")
        assert b"STATUS=collecting the inventory" in seen
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert b"STOPPING=1" in _recv_until(sock, b"STOPPING=1")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    with open(log, encoding="utf-8") as f:
        text = f.read()
    assert "Received SIGTERM, stopping" in text
    assert "kiln-agent stopped" in text
    assert not any(b"READY=1" in m for m in seen)  # never ready without an acknowledged report


def test_bad_config_value_is_a_clear_error(tmp_path):
    conf = write_config(str(tmp_path / "kiln.conf"), "kombu+memory:////", {"heartbeat_jitter": 0.9})
    log = str(tmp_path / "agent.log")
    proc = start_agent(conf, log)
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    with open(log, encoding="utf-8") as f:
        text = f.read()
    assert rc != 0
    assert "heartbeat_jitter" in text
