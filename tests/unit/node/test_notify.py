"""sd_notify against a real unix datagram socket bound by the test."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from agent.common.notify import Notifier, WatchdogPetter


@pytest.fixture
def notify_socket(tmp_path):
    """A bound datagram socket standing where systemd's would, and its path."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    yield sock, path
    sock.close()


def test_ready_and_status_arrive_as_datagrams(notify_socket):
    sock, path = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("serving node abc")
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving node abc"
    assert n.status("looking up\nsecond line dropped")
    assert sock.recv(4096) == b"STATUS=looking up"
    assert n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_namespace_socket():
    name = f"kiln-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(10)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent():
    n = Notifier({})
    assert not n.enabled
    assert n.ready() is False
    assert Notifier({"NOTIFY_SOCKET": "relative/path"}).enabled is False


def test_a_vanished_socket_is_reported_not_raised(tmp_path):
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready() is False


def test_watchdog_interval_is_half_watchdog_usec():
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval() == 15.0
    assert (
        Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_interval() == 15.0
    )
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_interval() is None
    assert Notifier({"WATCHDOG_USEC": "junk"}).watchdog_interval() is None
    assert Notifier({}).watchdog_interval() is None


def test_petter_sends_watchdog_pings(notify_socket):
    sock, path = notify_socket
    petter = WatchdogPetter(Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"}))
    assert petter.start()
    try:
        assert [sock.recv(4096) for _ in range(3)] == [b"WATCHDOG=1"] * 3
    finally:
        petter.stop()


def test_petter_holds_back_when_unhealthy(notify_socket):
    sock, path = notify_socket
    healthy = [False]
    petter = WatchdogPetter(
        Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"}), alive=lambda: healthy[0]
    )
    petter.start()
    try:
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        healthy[0] = True
        sock.settimeout(10)
        assert sock.recv(4096) == b"WATCHDOG=1"
    finally:
        petter.stop()


def test_petter_does_not_start_without_watchdog(notify_socket):
    _, path = notify_socket
    assert WatchdogPetter(Notifier({"NOTIFY_SOCKET": path})).start() is False
