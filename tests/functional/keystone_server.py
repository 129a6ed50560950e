"""A real Keystone (PyPI ``keystone`` on SQLite) for the API-roles tests, in a venv of its own.

Keystone's dependencies conflict with Kiln's, so it gets a venv cached outside the clone
(~/.cache/kiln/keystone-venv-<hash>, made once under a file lock) and runs as a WSGI app
(keystone.server.wsgi) under wsgiref on a port of the test's own.
"""

from __future__ import annotations

import fcntl
import getpass
import grp
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.functional import procs

SPEC = "keystone"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kiln"
ADMIN_PASSWORD = "kiln-admin-pw"

_SERVE = """
import socketserver, sys
from wsgiref import simple_server
from keystone.server.wsgi import initialize_public_application

class Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True

class Quiet(simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass

port = int(sys.argv.pop(1))  # oslo.config would read it as an argument of its own
app = initialize_public_application()
httpd = simple_server.make_server("127.0.0.1", port, app, Server, Quiet)
print("keystone serving", flush=True)
httpd.serve_forever()
"""


def venv() -> Path:
    """The cached Keystone venv (built on first use); its python."""
    key = hashlib.sha256(f"{SPEC} {sys.version_info[:2]}".encode()).hexdigest()[:12]
    path = CACHE / f"keystone-venv-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"keystone-venv-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / ".ready").exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
            subprocess.run([str(path / "bin/python"), "-m", "pip", "install", "-q", SPEC], check=True)
            (path / ".ready").touch()
    return path / "bin/python"


def _manage(python: Path, conf: Path, *args: str) -> None:
    cmd = [
        str(python),
        "-c",
        "from keystone.cmd.manage import main; main()",
        "--config-file",
        str(conf),
        *args,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if result.returncode:
        raise RuntimeError(f"keystone-manage {args[0]} failed ({result.returncode}): {result.stderr[-2000:]}")


@contextmanager
def running(tmp: Path) -> Iterator[str]:
    """Bootstrap a Keystone in ``tmp`` (admin/ADMIN_PASSWORD, system admin) and serve it; yield its URL."""
    python = venv()
    port = procs.free_port()
    url = f"http://127.0.0.1:{port}/v3"
    conf = procs.write_conf(
        tmp / "keystone.conf",
        {
            "DEFAULT": {"log_file": tmp / "keystone.log"},
            "database": {"connection": f"sqlite:///{tmp}/keystone.sqlite"},
            "fernet_tokens": {"key_repository": tmp / "fernet-keys"},
            "fernet_receipts": {"key_repository": tmp / "fernet-keys"},
            "credential": {"key_repository": tmp / "credential-keys"},
            "token": {"provider": "fernet"},
            # bcrypt's fewest rounds: a user's password check costs ms, not 0.4 s (test users only).
            "identity": {"password_hash_rounds": 4},
        },
    )
    owner = ["--keystone-user", getpass.getuser(), "--keystone-group", grp.getgrgid(os.getgid()).gr_name]
    _manage(python, conf, "db_sync")
    _manage(python, conf, "fernet_setup", *owner)
    _manage(python, conf, "credential_setup", *owner)
    _manage(
        python,
        conf,
        "bootstrap",
        "--bootstrap-password",
        ADMIN_PASSWORD,
        "--bootstrap-public-url",
        url,
        "--bootstrap-region-id",
        "RegionOne",
    )
    env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(conf)}
    with open(tmp / "keystone-wsgi.log", "w") as log:
        proc = subprocess.Popen(
            [str(python), "-c", _SERVE, str(port)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp
        )
    try:
        procs.wait_for(lambda: procs.http_answers(url), 60, f"Keystone at {url}", (proc,))
        yield url
    finally:
        procs.stop(proc, 10)
