"""A lab VM's serial console (a unix socket libvirt binds): run shell commands inside the guest.

The test OS logs root in on ttyS0 (agent/image/files/serial-autologin.conf). ``Console.run`` types
a command with echo off and reads until an end marker carrying the exit status, so tests check
real packets from inside the VMs (ping, arping, a TCP connect) without any network path to them.
"""

from __future__ import annotations

import re
import secrets
import socket
import time


class ConsoleError(RuntimeError):
    """The console did not answer (no shell, a command that did not finish in time)."""


class Console:
    """One connection to a VM's serial console socket."""

    def __init__(self, path: str, name: str = "") -> None:
        self.path = path
        self.name = name or path
        self.sock: socket.socket | None = None
        self.seen = ""

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the guest's shell stays logged in)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _connect(self) -> socket.socket:
        if self.sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
            except OSError as exc:
                sock.close()
                raise ConsoleError(
                    f"{self.name}: cannot connect to the console socket {self.path}: {exc}"
                ) from None
            self.sock = sock
        return self.sock

    def _read_until(self, pattern: re.Pattern, timeout: float) -> re.Match:
        sock = self._connect()
        deadline = time.monotonic() + timeout
        while True:
            found = pattern.search(self.seen)
            if found:
                self.seen = self.seen[found.end() :]
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConsoleError(
                    f"{self.name}: no {pattern.pattern!r} on the console within {timeout:.0f} s; "
                    f"last output: {self.seen[-800:]!r}"
                )
            sock.settimeout(min(left, 1.0))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise ConsoleError(f"{self.name}: the console socket closed (VM stopped?)")
            self.seen += data.decode(errors="replace")

    def _send(self, text: str) -> None:
        self._connect().sendall(text.encode())

    def login(self, timeout: float = 300) -> None:
        """Wait for the autologin shell and turn echo and the prompt off."""
        token = secrets.token_hex(4)
        pattern = re.compile(rf"KILNREADY{token}-(\d+)")
        deadline = time.monotonic() + timeout
        while True:
            self._send(f"\nstty -echo 2>/dev/null; PS1=''; export PS1; echo KILNREADY{token}-$((1+1))\n")
            try:
                self._read_until(pattern, min(10.0, max(1.0, deadline - time.monotonic())))
                return
            except ConsoleError:
                if time.monotonic() > deadline:
                    raise ConsoleError(
                        f"{self.name}: no root shell on the serial console within {timeout:.0f} s"
                    ) from None

    def run(self, command: str, timeout: float = 60) -> tuple[int, str]:
        """Run ``command`` in the guest's shell; (exit status, output)."""
        token = secrets.token_hex(6)
        self.seen = ""
        self._send(f"{command}; echo KILNEND{token}-rc$?\n")
        found = self._read_until(re.compile(rf"^(.*?)KILNEND{token}-rc(\d+)", re.S), timeout)
        return int(found.group(2)), found.group(1).replace("\r", "")
