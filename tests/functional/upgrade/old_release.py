"""The previous Kiln release, installed from this clone's git history into a venv of its own.

The venv is built once per commit under ``~/.cache/kiln/release-<commit>`` (a shared clone checked
out at the commit, then ``pip install`` of it and its requirements into a new venv) and reused by
later runs.
Its processes run with no PYTHONPATH and outside the checkout, so they import the old ``agent``
package, never this tree's.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.functional import procs

#: main at the end of 2026-12-04, before the work of 2026-12-05: its agent speaks kiln.conductor
#: RPC 1.0 and its database schema is at alembic revision PREVIOUS_SCHEMA (the initial schema).
PREVIOUS_RELEASE = "4e4b81053876565047ecc32305dbc365afb93b31"
PREVIOUS_SCHEMA = "12c53a968cd1"
CACHE = Path(os.environ.get("KILN_CACHE", Path.home() / ".cache" / "kiln"))
#: Database drivers the old services need besides their requirements (test-only there).
DB_DRIVERS = ["psycopg2-binary", "PyMySQL"]


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(procs.REPO), *args], capture_output=True, timeout=120)


def _build(commit: str, venv: Path) -> None:
    """Install ``commit`` with its requirements into the new venv ``venv``."""
    with tempfile.TemporaryDirectory(prefix="kiln-release-") as tmp:
        # A clone, not an archive: pbr finds the package data (catalogues, templates) through git.
        src = Path(tmp) / "src"
        for args in (
            ["clone", "-q", "--shared", "--no-checkout", str(procs.REPO), str(src)],
            ["-C", str(src), "checkout", "-q", commit],
        ):
            subprocess.run(["git", *args], check=True, capture_output=True, timeout=120)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        # A fixed version: pbr would otherwise derive one from the tags the clone happens to have.
        env = {**os.environ, "PBR_VERSION": "0.0.1"}
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(
            [*pip, "-r", str(src / "requirements.txt"), *DB_DRIVERS, str(src)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"pip install of Kiln {commit} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
            )


def release_venv(commit: str = PREVIOUS_RELEASE) -> Path:
    """The venv holding Kiln at ``commit`` (built now if the cache has none); skips without git history."""
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        pytest.skip(
            f"commit {commit} is not in {procs.REPO}'s history (a shallow clone? git fetch --unshallow)"
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    venv = CACHE / f"release-{commit[:12]}"
    with open(CACHE / f"release-{commit[:12]}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "kiln-installed").is_file():
            shutil.rmtree(venv, ignore_errors=True)
            started = time.monotonic()
            try:
                _build(commit, venv)
            except BaseException:
                shutil.rmtree(venv, ignore_errors=True)
                raise
            (venv / "kiln-installed").write_text(f"{commit} built in {time.monotonic() - started:.0f} s\n")
    return venv


def env() -> dict[str, str]:
    """The environment of an old-release process: no PYTHONPATH, so the venv's own agent is imported."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def start(venv: Path, module: str, conf: Path, log: Path, *args: str) -> subprocess.Popen:
    """Start the old release's ``python -m <module> --config-file conf`` with its output in ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                str(venv / "bin" / "python"),
                "-m",
                module,
                "--config-file",
                str(conf),
                "--log-file",
                str(log),
                *args,
            ],
            cwd=log.parent,
            env=env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the old release's ``python <args>``; raise with its output on failure."""
    proc = subprocess.run(
        [str(venv / "bin" / "python"), *args], cwd=cwd, env=env(), capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{args} of the old release failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    return proc
