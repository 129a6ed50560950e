"""collect_logs: a base64 tar.gz of the agent's log, a journal excerpt and the inventory."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import tarfile
import time

from agent.node.steps.context import StepContext

MAX_LOG_BYTES = 16 << 20


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def _tail(path: str, limit: int = MAX_LOG_BYTES) -> bytes:
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - limit))
        return f.read()


def _journal(lines: int) -> bytes | None:
    if lines <= 0:
        return None
    try:
        proc = subprocess.run(
            ["journalctl", "--no-pager", "-o", "short-iso", "-n", str(lines)],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def collect_logs(ctx: StepContext, args: dict) -> dict:
    """Pack the logs and the inventory; returns {"logs": base64 tar.gz, "files": [names]}."""
    buf = io.BytesIO()
    files, missing = [], []
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        log_file = ctx.opts.log_file
        if log_file:
            try:
                _add(tar, "kiln-agent.log", _tail(log_file))
                files.append("kiln-agent.log")
            except OSError as exc:
                missing.append(f"kiln-agent.log: {exc}")
        journal = _journal(ctx.opts.collect_logs_journal_lines)
        if journal is not None:
            _add(tar, "journal.log", journal)
            files.append("journal.log")
        else:
            missing.append("journal.log: journalctl unavailable")
        try:
            inventory = ctx.inventory()
            _add(tar, "inventory.json", json.dumps(inventory, indent=1, sort_keys=True, default=str).encode())
            files.append("inventory.json")
        except Exception as exc:  # noqa: BLE001 - logs are still worth sending
            missing.append(f"inventory.json: {exc}")
    return {"logs": base64.b64encode(buf.getvalue()).decode("ascii"), "files": files, "missing": missing}
