"""python-ironicclient's `baremetal` CLI run against a kiln-api, as the CLI functional tests use it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest


def runner(endpoint: str, timeout: float = 120) -> Callable[..., Any]:
    """run(*args, ok=True): `baremetal ...` at the newest microversion; JSON back for -f json."""
    path = shutil.which("baremetal") or shutil.which("baremetal", path=os.path.dirname(sys.executable))
    if path is None:
        pytest.skip("python-ironicclient's baremetal CLI is not installed")
    env = {
        **os.environ,
        "OS_AUTH_TYPE": "none",
        "OS_ENDPOINT": endpoint,
        "OS_BAREMETAL_API_VERSION": "latest",
    }
    env.pop("OS_CLOUD", None)

    def run(*args: str, ok: bool = True) -> Any:
        done = subprocess.run([path, *args], env=env, capture_output=True, text=True, timeout=timeout)
        if ok:
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout) if "-f" in args and done.stdout.strip() else done.stdout
        return done

    return run
