"""A real neutron-server (ML2 + networking-generic-switch, noauth) for functional tests.

Neutron's pins conflict with Kiln's, so it runs from a venv of its own, built on first use and
cached outside the clone (``~/.cache/kiln/neutron-venv-<hash of the requirements>``, or
$KILN_CACHE_DIR). Its database is a throwaway MariaDB one: Neutron's migrations no longer run
on PostgreSQL (one of them is MySQL-only: ``ALTER TABLE tags CONVERT TO CHARACTER SET``). The
migrated schema is dumped into the cache once and loaded from there afterwards. Neutron 29 has
no ``neutron-server`` script: its API is the WSGI app ``neutron.wsgi.api.application``, served
here by wsgiref in one process; ML2 binds ports (and networking-generic-switch moves the switch
ports) in that process, so no RPC server or agent is needed. RabbitMQ gets a vhost of its own.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.functional import procs

REQUIREMENTS = ("neutron==29.0.0", "networking-generic-switch==10.2.0", "pymysql")
MYSQL = ("mysql", "-h", "127.0.0.1", "-u", "root")
PHYSNET = "physnet1"
_VERBS = ("create", "update")

_SERVE = """\
import os, sys
os.environ["OS_NEUTRON_CONFIG_DIR"] = {confdir!r}
os.environ["OS_NEUTRON_CONFIG_FILES"] = "neutron.conf"
sys.argv = [sys.argv[0]]
from wsgiref.simple_server import WSGIRequestHandler, make_server
from neutron.wsgi.api import application

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

print("neutron API serving", flush=True)
make_server("127.0.0.1", {port}, application, handler_class=Quiet).serve_forever()
"""


def available() -> str | None:
    """Why a neutron-server cannot run here, or None."""
    if shutil.which("mysql") is None or shutil.which("mysqldump") is None:
        return "the MariaDB/MySQL client (mysql, mysqldump) is not installed"
    if not procs.reachable(3306):
        return "MariaDB is not listening on 127.0.0.1:3306"
    if not procs.reachable(5672):
        return "RabbitMQ is not listening on 127.0.0.1:5672"
    return None


def _cache() -> Path:
    root = Path(os.environ.get("KILN_CACHE_DIR") or Path.home() / ".cache" / "kiln")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _key() -> str:
    return hashlib.sha256("\n".join(REQUIREMENTS).encode()).hexdigest()[:12]


@contextmanager
def _locked(name: str) -> Iterator[None]:
    with open(_cache() / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(*args: str, stdin=None, timeout: float = 900) -> str:
    done = subprocess.run(args, capture_output=True, text=True, stdin=stdin, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def venv() -> Path:
    """The cached venv with neutron and networking-generic-switch; built (minutes) when absent."""
    path = _cache() / f"neutron-venv-{_key()}"
    with _locked(path.name):
        if not (path / "complete").exists():
            shutil.rmtree(path, ignore_errors=True)
            _run(sys.executable, "-m", "venv", str(path))
            _run(str(path / "bin" / "pip"), "install", "-q", *REQUIREMENTS)
            (path / "complete").write_text("\n".join(REQUIREMENTS) + "\n")
    return path


def _mysql(*args: str, stdin=None) -> str:
    return _run(*MYSQL, *args, stdin=stdin, timeout=300)


def _schema(env: Path, conf: Path, database: str) -> None:
    """Give ``database`` Neutron's schema: from the cached dump, else by migrating (and dumping it)."""
    dump = _cache() / f"neutron-schema-{_key()}.sql"
    with _locked(dump.name):
        if not dump.exists():
            _run(str(env / "bin" / "neutron-db-manage"), "--config-file", str(conf), "upgrade", "heads")
            text = _run("mysqldump", *MYSQL[1:], "--skip-comments", database)
            partial = dump.with_suffix(".partial")
            partial.write_text(text)
            partial.rename(dump)
            return
    with open(dump) as source:
        _mysql(database, stdin=source)


def _ini(sections: dict[str, dict]) -> str:
    lines = []
    for name, options in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {value}" for key, value in options.items())
        lines.append("")
    return "\n".join(lines)


class NeutronServer:
    """neutron's API on 127.0.0.1:<port> with ML2 (flat, vlan on ``physnet1``) and genericswitch."""

    def __init__(self, workdir: Path, switches: dict[str, dict], vlan_range: tuple[int, int]) -> None:
        self.dir = workdir
        self.switches = switches
        self.vlan_range = vlan_range
        tag = uuid.uuid4().hex[:10]
        self.database = f"kiln_neutron_{tag}"
        self.vhost = f"kiln-neutron-{tag}"
        self.port = procs.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "neutron.log"
        self._proc: subprocess.Popen | None = None
        self._made: list[str] = []
        self._env = Path()

    def start(self) -> NeutronServer:
        """Build or reuse the venv, make the database and vhost, start the API; return self."""
        started = time.monotonic()
        env = venv()
        built = time.monotonic()
        try:
            conf = self._configure(env)
            _schema(env, conf, self.database)
            migrated = time.monotonic()
            self._env = env
            self.start_api()
        except BaseException:
            self.stop()
            raise
        print(
            f"\nneutron-server ready in {time.monotonic() - started:.1f} s (venv {built - started:.1f} s, "
            f"database {migrated - built:.1f} s, API start {time.monotonic() - migrated:.1f} s)",
            flush=True,
        )
        return self

    def _configure(self, env: Path) -> Path:
        _mysql("-e", f"CREATE DATABASE {self.database} CHARACTER SET utf8mb4")
        self._made.append("database")
        procs.add_vhost(self.vhost)
        self._made.append("vhost")
        paste = next((env / "etc" / "neutron").glob("api-paste.ini"), None)
        if paste is None:
            raise RuntimeError(f"{env}/etc/neutron/api-paste.ini is missing; remove {env} to rebuild it")
        low, high = self.vlan_range
        sections = {
            "DEFAULT": {
                "api_paste_config": paste,
                "core_plugin": "ml2",
                "service_plugins": "",
                "auth_strategy": "noauth",
                "transport_url": f"rabbit://guest:guest@127.0.0.1:5672/{self.vhost}",
                "api_workers": 1,
                "rpc_workers": 0,
                "rpc_state_report_workers": 0,
                "log_file": self.log,
            },
            "database": {"connection": f"mysql+pymysql://root@127.0.0.1/{self.database}"},
            "oslo_concurrency": {"lock_path": self.dir / "lock"},
            "ml2": {
                "type_drivers": "flat,vlan",
                "tenant_network_types": "vlan",
                "mechanism_drivers": "genericswitch",
                "extension_drivers": "port_security",
            },
            "ml2_type_vlan": {"network_vlan_ranges": f"{PHYSNET}:{low}:{high}"},
        }
        for name, options in self.switches.items():
            sections[f"genericswitch:{name}"] = options
        # noauth makes every request admin, but Neutron keeps binding:profile to the ``service``
        # role (the one Ironic's and Kiln's credentials carry in a Keystone deployment): grant it.
        policy = self.dir / "policy.yaml"
        policy.write_text(
            "".join(
                f'"{verb}_port:binding:profile": "rule:admin_only or rule:service_api"\n' for verb in _VERBS
            )
        )
        sections["oslo_policy"] = {"policy_file": policy}
        conf = self.dir / "neutron.conf"
        conf.write_text(_ini(sections))
        return conf

    def start_api(self) -> None:
        """Start (or restart) the API process and wait until it answers."""
        script = self.dir / "serve.py"
        script.write_text(_SERVE.format(confdir=str(self.dir), port=self.port))
        with open(self.dir / "serve.out", "a") as out:
            self._proc = subprocess.Popen(
                [str(self._env / "bin" / "python"), str(script)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
            )
        try:
            procs.wait_for(
                lambda: procs.http_answers(f"{self.url}/v2.0/networks"),
                120,
                f"{self.url} to answer",
                (self._proc,),
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{procs.read(self.dir / 'serve.out')[-3000:]}") from None

    def stop_api(self) -> None:
        """Stop the API process (Neutron unreachable until start_api)."""
        if self._proc is not None:
            procs.stop(self._proc, 15)
            self._proc = None

    def stop(self) -> None:
        """Stop the API, drop the database and delete the vhost."""
        self.stop_api()
        if "database" in self._made:
            _mysql("-e", f"DROP DATABASE IF EXISTS {self.database}")
        if "vhost" in self._made:
            procs.delete_vhost(self.vhost)
        self._made = []
