"""kiln-conductor's multiprocess metrics: a forked child's values reach the parent's endpoint."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agent.metrics import multiproc

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..")
# Parent prepares, a forked child records a failure, the parent's registry adds both processes up.
SCRIPT = """
import os, sys
from agent.metrics import multiproc
directory, made = multiproc.prepare(sys.argv[1] or None)
from prometheus_client import generate_latest
from agent.metrics import conductor
conductor.FAILURES.labels("deploy").inc()
pid = os.fork()
if pid == 0:
    conductor.FAILURES.labels("deploy").inc(2)
    os._exit(0)
os.waitpid(pid, 0)
from prometheus_client import CollectorRegistry, multiprocess
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
print(directory, made)
print(generate_latest(registry).decode())
multiproc.cleanup(directory, made)
print("exists after cleanup:", os.path.isdir(directory))
"""


def _run(directory: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(ROOT)}
    env.pop(multiproc.ENV, None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, directory],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_a_temporary_directory_adds_up_both_processes_and_is_removed() -> None:
    out = _run("")
    assert 'kiln_provision_failures_total{operation="deploy"} 3.0' in out
    assert "exists after cleanup: False" in out


def test_a_configured_directory_is_emptied_of_an_earlier_run_and_kept(tmp_path) -> None:
    (tmp_path / "counter_1.db").write_bytes(b"stale values of an earlier run")
    (tmp_path / "notes.txt").write_text("not ours")
    out = _run(str(tmp_path))
    assert 'kiln_provision_failures_total{operation="deploy"} 3.0' in out
    assert "exists after cleanup: True" in out
    assert not (tmp_path / "counter_1.db").exists()
    assert (tmp_path / "notes.txt").exists()


def test_prepare_refuses_once_prometheus_client_is_imported() -> None:
    import prometheus_client  # noqa: F401 - the point of the test

    with pytest.raises(RuntimeError, match="imported before"):
        multiproc.prepare(None)
    assert multiproc.ENV not in os.environ
