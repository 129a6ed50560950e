"""Kiln installed as an operator would: pip into a venv on a fresh Debian 12 host, then kiln-setup.

The host is a systemd-nspawn container (tests/functional/install/container.py) booted with systemd
on the host's network. kiln-setup runs against this machine's PostgreSQL (a database of the test's
own) and RabbitMQ (a vhost of the test's own); the three services must come up under systemd and the
API must answer the admin credential kiln-setup made. Everything is removed at the end.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy

from tests.functional import procs
from tests.functional.install import container

SERVICES = ("kiln-conductor", "kiln-api", "kiln-agent")
#: The database servers kiln-setup installs on: (server URL, its port, the setup.cfg extra with its driver).
SERVERS = {
    "postgresql": (procs.POSTGRES, 5432, "postgresql"),
    "mysql": ("mysql+pymysql://root@127.0.0.1", 3306, "mysql"),
}

pytestmark = pytest.mark.slow


def _get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"X-OpenStack-Ironic-API-Version": "1.1"})
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


class _Phases:
    """Seconds each phase of the test took (printed with pytest -s)."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.seconds: list[str] = []

    def __call__(self, phase: str) -> None:
        now = time.monotonic()
        self.seconds.append(f"{phase} {now - self.last:.1f} s")
        self.last = now

    def __str__(self) -> str:
        return f"{time.monotonic() - self.start:.1f} s: " + ", ".join(self.seconds)


def _admin(backend: str) -> sqlalchemy.Engine:
    database = "postgres" if backend == "postgresql" else ""
    return sqlalchemy.create_engine(f"{SERVERS[backend][0]}/{database}", isolation_level="AUTOCOMMIT")


def _drop_database(admin: sqlalchemy.Engine, backend: str, database: str) -> None:
    force = " WITH (FORCE)" if backend == "postgresql" else ""
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {database}{force}")


def _databases(admin: sqlalchemy.Engine) -> set[str]:
    query = "SELECT datname FROM pg_database" if admin.dialect.name == "postgresql" else "SHOW DATABASES"
    with admin.connect() as conn:
        return {row[0] for row in conn.exec_driver_sql(query)}


def _vhosts() -> set[str]:
    out = subprocess.run(
        [procs.RABBITMQCTL, "-q", "list_vhosts", "name"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(out.stdout.split())


def _journal(box: container.Container) -> str:
    done = box.run("journalctl --no-pager -n 200 -u 'kiln-*'", check=False)
    return done.stdout[-8000:]


@pytest.mark.parametrize("backend", sorted(SERVERS))
def test_kiln_setup_installs_and_starts_the_services(tmp_path: Path, backend: str) -> None:
    why = container.missing_tools()
    if why:
        pytest.skip(why)
    server, server_port, extra = SERVERS[backend]
    if not procs.reachable(server_port) or not procs.reachable(5672) or procs.RABBITMQCTL is None:
        pytest.skip(
            f"{backend} (127.0.0.1:{server_port}) and RabbitMQ (127.0.0.1:5672, rabbitmqctl) are needed"
        )
    clock = _Phases()
    root = container.rootfs()
    wheels = container.wheelhouse()
    clock("root filesystem and wheelhouse (cached)")
    dist = tmp_path / "dist"
    wheel = container.build_kiln_wheel(dist)
    clock("Kiln's wheel")

    name = f"kiln-install-{uuid.uuid4().hex[:8]}"
    database = name.replace("-", "_")
    vhost = name
    port = procs.free_port()
    password = secrets.token_urlsafe(12)
    admin = _admin(backend)
    # Each clean-up step runs, last made first, even when one before it failed.
    with contextlib.ExitStack() as cleanup:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {database}")
        cleanup.callback(_drop_database, admin, backend, database)
        procs.add_vhost(vhost)
        cleanup.callback(procs.delete_vhost, vhost)
        box = container.Container(
            name, root, {wheels: "/mnt/wheels", dist: "/mnt/dist"}, tmp_path / "console.log"
        )
        cleanup.callback(box.stop)
        box.wait_booted()
        clock("boot")
        # The operator's steps: a venv, Kiln with its database driver, then the one command.
        box.run("python3 -m venv /opt/kiln")
        box.run(
            "/opt/kiln/bin/pip install -q --no-index --find-links /mnt/wheels"
            f" '/mnt/dist/{wheel.name}[{extra}]'"
        )
        clock("pip install")
        command = (
            "/opt/kiln/bin/kiln-setup"
            f" --database-url {server}/{database}"
            f" --transport-url rabbit://guest:guest@127.0.0.1:5672/{vhost}"
            f" --api-host 127.0.0.1 --api-port {port}"
            " --set DEFAULT.debug=true"
        )
        setup = box.run(f"KILN_ADMIN_PASSWORD={password} {command}", check=False)
        assert setup.returncode == 0, f"kiln-setup failed:\n{setup.stdout}{setup.stderr}\n{_journal(box)}"
        assert "systemd-analyze verify: passed" in setup.stdout
        clock("kiln-setup")
        # verify again from the outside: any output from it is a complaint.
        verify = box.run("systemd-analyze verify --man=no /etc/systemd/system/kiln-*.service", check=False)
        assert verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(), verify.stderr

        units = box.run("cat /etc/systemd/system/kiln-api.service").stdout
        assert "ExecStart=/opt/kiln/bin/kiln-api --config-file /etc/kiln/kiln.conf" in units
        assert box.run("id -u kiln").stdout.strip().isdigit()
        modes = box.run("stat -c '%n %a %U:%G' /etc/kiln/kiln.conf /etc/kiln/htpasswd /etc/kiln/admin-openrc")
        assert modes.stdout.split("\n")[:3] == [
            "/etc/kiln/kiln.conf 640 root:kiln",
            "/etc/kiln/htpasswd 640 root:kiln",
            "/etc/kiln/admin-openrc 600 root:root",
        ]
        openrc = box.run(". /etc/kiln/admin-openrc && echo $OS_USERNAME:$OS_PASSWORD").stdout.strip()
        assert openrc == f"admin:{password}"

        def all_active() -> bool:
            done = box.run(f"systemctl is-active {' '.join(SERVICES)}", check=False)
            return done.stdout.split() == ["active"] * len(SERVICES)

        try:
            procs.wait_for(all_active, 90, "kiln-conductor, kiln-api and kiln-agent active")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_journal(box)}") from None
        owners = box.run("stat -c '%n %U' /var/lib/kiln/agent /var/lib/kiln/conductor").stdout.split("\n")
        assert owners[:2] == ["/var/lib/kiln/agent root", "/var/lib/kiln/conductor kiln"]

        url = f"http://127.0.0.1:{port}/v1/nodes"
        # kiln-api is a Type=exec service: active once started, listening a moment later.
        procs.wait_for(lambda: _get(url)[0] == 401, 60, f"kiln-api to refuse {url} without credentials")
        assert _get(url, ("admin", "wrong-" + password))[0] == 401
        status, body = _get(url, ("admin", password))
        assert status == 200, status
        # kiln-agent reports ready once the conductor acknowledged its inventory: discovery (on by
        # default) enrolled this host as a node.
        assert len(body["nodes"]) == 1, body
        clock("services active, API checked")

        # Run again with a new password: the same installation, the new password in force.
        again = box.run(f"{command} --admin-password new-{password}", check=False)
        assert again.returncode == 0, f"kiln-setup again failed:\n{again.stdout}{again.stderr}"
        procs.wait_for(all_active, 90, "the services active after kiln-setup ran again")
        procs.wait_for(lambda: _get(url, ("admin", f"new-{password}"))[0] == 200, 30, "the new password")
        assert _get(url, ("admin", password))[0] == 401
        assert box.run("grep -c '^admin:' /etc/kiln/htpasswd").stdout.strip() == "1"
        clock("kiln-setup again")
    # Clean-up removed everything: the container and its processes, the database, the vhost, the port.
    assert box.proc.returncode == 0, box.log.read_text()[-3000:]
    assert not Path(f"/proc/{box.leader}").exists()
    try:
        assert database not in _databases(admin)
    finally:
        admin.dispose()
    assert vhost not in _vhosts()
    assert not procs.reachable(port)
    clock("clean-up")
    print(f"\n{backend}: {clock}")
