"""Start kiln-agent as a real process with a config file (shared with the functional tests)."""

from __future__ import annotations

import os
import subprocess
import sys


def agent_command() -> list[str]:
    """The installed kiln-agent console script, or the module when it is not installed."""
    script = os.path.join(os.path.dirname(sys.executable), "kiln-agent")
    return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "agent.cmd.agent"]


def write_config(path: str, transport_url: str, agent: dict) -> str:
    """Write a kiln.conf with ``transport_url`` and ``[agent]`` options."""
    lines = [
        "[DEFAULT]",
        f"transport_url = {transport_url}",
        "debug = false",
        "",
        "[inventory]",
        "use_nvml = false",
    ]
    lines += ["", "[agent]"] + [f"{k} = {v}" for k, v in agent.items()]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def start_agent(config_file: str, log_file: str, env: dict | None = None) -> subprocess.Popen:
    """Start kiln-agent in its own process; its log goes to ``log_file``."""
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("PYTHONWARNINGS", "ignore")
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            [*agent_command(), "--config-file", config_file, "--log-file", log_file],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
