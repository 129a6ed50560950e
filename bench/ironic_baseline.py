"""Ironic 39 as the baseline of bench.fleet_sim: its own cached venv, all-in-one, SQLite, noauth.

The venv (``pip install ironic==39.0.0``) is made once under ~/.cache/kiln/ironic-venv (outside
the repository) and reused. Ironic runs ironic.command.singleprocess's main (what the ``ironic``
console script runs: conductor and API in one service) with ``rpc_transport = none``,
fake-hardware only, and nodes enrolled in bulk through its own SQLAlchemy models (the rows its
DB API writes, with the Node object version), in one transaction.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

IRONIC = "ironic==39.0.0"
VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kiln" / "ironic-venv"
_READY = ".kiln-ready"

# Run by the venv's python: bulk-insert argv[2] fake-hardware nodes into the database argv[1].
_ENROLL = r"""
import datetime, sys, uuid
import sqlalchemy
from ironic.db.sqlalchemy import models
from ironic.objects import node as node_obj

url, count = sys.argv[1], int(sys.argv[2])
now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
iface = {f"{i}_interface": "fake" for i in ("boot", "deploy", "management", "power", "console",
                                          "inspect", "raid", "vendor", "bios", "rescue")}
iface.update(network_interface="noop", storage_interface="noop", firmware_interface="fake")
rows = [{
    "uuid": str(uuid.uuid4()), "name": f"sim-{i:06d}", "driver": "fake-hardware",
    "provision_state": "enroll", "power_state": "power off", "resource_class": "gpu",
    "conductor_group": "", "properties": {"cpus": 128, "memory_mb": 2097152, "local_gb": 3500},
    "driver_info": {}, "driver_internal_info": {}, "instance_info": {},
    "extra": {"rack": f"r{i % 40}"}, "maintenance": False, "protected": False, "retired": False,
    "console_enabled": False, "created_at": now, "version": node_obj.Node.VERSION, **iface,
} for i in range(count)]
engine = sqlalchemy.create_engine(url)
with engine.begin() as conn:
    conn.execute(models.Node.__table__.insert(), rows)
print(len(rows))
"""


def _main(command: str) -> str:
    """Code that runs ironic.command.<command>'s main() as its console script does."""
    name = "ironic" if command == "singleprocess" else f"ironic-{command}"
    return f"import sys; sys.argv[0] = {name!r}; from ironic.command.{command} import main; sys.exit(main())"


class IronicUnavailable(RuntimeError):
    """Ironic could not be installed or started; the message says why."""


def python() -> Path:
    """The venv's python, making the venv first if needed; IronicUnavailable naming why not."""
    py = VENV / "bin" / "python"
    if (VENV / _READY).exists() and py.exists():
        return py
    VENV.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [str(py), "-m", "pip", "install", "-q", IRONIC],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            said = (proc.stderr.strip() or proc.stdout.strip())[-800:]
            raise IronicUnavailable(f"{' '.join(cmd)} failed (exit {proc.returncode}): {said}")
    (VENV / _READY).write_text(IRONIC + "\n")
    return py


def config(workdir: Path, port: int) -> Path:
    """Write Ironic's config (all-in-one, no RPC, SQLite, noauth, fake-hardware); its path."""
    fake = {
        f"enabled_{i}_interfaces": "fake"
        for i in ("boot", "deploy", "management", "power", "console", "inspect", "raid", "vendor", "bios")
    }
    sections = {
        "DEFAULT": {
            "auth_strategy": "noauth",
            "rpc_transport": "none",
            "host": "ironic-bench",
            "enabled_hardware_types": "fake-hardware",
            **fake,
            "enabled_rescue_interfaces": "fake",
            "enabled_firmware_interfaces": "fake",
            "enabled_network_interfaces": "noop",
            "enabled_storage_interfaces": "noop",
            "default_network_interface": "noop",
            "state_path": str(workdir),
        },
        "api": {"host_ip": "127.0.0.1", "port": str(port)},
        "database": {"connection": f"sqlite:///{workdir}/ironic.sqlite"},
        "dhcp": {"dhcp_provider": "none"},
        "conductor": {"automated_clean": "false"},
    }
    lines = []
    for name, options in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {v}" for k, v in options.items()]
        lines.append("")
    path = workdir / "ironic.conf"
    path.write_text("\n".join(lines))
    return path


def prepare(workdir: Path, port: int, nodes: int) -> list[str]:
    """Make Ironic's schema and enroll ``nodes``; the command that starts it (IronicUnavailable if not)."""
    py = python()
    conf = config(workdir, port)
    for cmd in (
        [str(py), "-c", _main("dbsync"), "--config-file", str(conf), "create_schema"],
        [str(py), "-c", _ENROLL, f"sqlite:///{workdir}/ironic.sqlite", str(nodes)],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=workdir)
        if proc.returncode != 0:
            said = (proc.stderr.strip() or proc.stdout.strip())[-800:]
            raise IronicUnavailable(f"{' '.join(cmd[:3])} failed (exit {proc.returncode}): {said}")
    return [
        str(py),
        "-c",
        _main("singleprocess"),
        "--config-file",
        str(conf),
        "--log-file",
        str(workdir / "ironic.log"),
    ]
