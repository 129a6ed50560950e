"""The shipped systemd units, rendered for this installation, verified, enabled and started."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from agent.install.host import SetupError, run

#: Started in this order; kiln-agent last, as it waits for a conductor to acknowledge it.
SERVICES = ("kiln-conductor", "kiln-api", "kiln-agent")
UNIT_DIR = Path("/etc/systemd/system")
_EXEC = re.compile(r"^(ExecStart=)\S*/(kiln-[a-z-]+)(\s.*)?$", re.MULTILINE)
_CONFIG = re.compile(r"--config-file\s+\S+")


def scripts_dir() -> Path:
    """The directory of this installation's console scripts (the venv's bin/)."""
    path = Path(sysconfig.get_path("scripts"))
    missing = [name for name in (*SERVICES, "kiln-dbsync") if not (path / name).exists()]
    if missing:
        raise SetupError(
            f"{', '.join(missing)} not found in {path}: run kiln-setup from the environment Kiln was "
            "pip-installed into (e.g. /opt/kiln/bin/kiln-setup)"
        )
    return path


def shipped_units_dir() -> Path:
    """Where Kiln's shipped units are: the source tree's etc/kiln/systemd, else the install prefix's."""
    # A checkout's own units first: an editable install's prefix may hold copies from an older version.
    for base in (Path(__file__).resolve().parents[2], Path(sys.prefix)):
        candidate = base / "etc" / "kiln" / "systemd"
        if (candidate / "kiln-api.service").is_file():
            return candidate
    raise SetupError(
        f"the shipped systemd units (etc/kiln/systemd) are neither under {sys.prefix} nor the source tree"
    )


def render(text: str, bindir: Path, config_file: Path) -> str:
    """A shipped unit's text with ExecStart pointing at ``bindir`` and the config at ``config_file``."""

    def _exec(match: re.Match) -> str:
        args = _CONFIG.sub(f"--config-file {config_file}", match.group(3) or "")
        return f"{match.group(1)}{bindir / match.group(2)}{args}"

    rendered, count = _EXEC.subn(_exec, text)
    if count != 1:
        raise SetupError(f"expected one ExecStart=.../kiln-* line in a shipped unit, found {count}")
    return rendered


def install_units(bindir: Path, config_file: Path, unit_dir: Path = UNIT_DIR) -> list[Path]:
    """Write the rendered units into ``unit_dir``; their paths."""
    source = shipped_units_dir()
    unit_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SERVICES:
        text = (source / f"{name}.service").read_text()
        path = unit_dir / f"{name}.service"
        path.write_text(render(text, bindir, config_file))
        path.chmod(0o644)
        written.append(path)
    return written


def verify(units: list[Path]) -> None:
    """``systemd-analyze verify`` the units; SetupError with its complaints if it finds any.

    verify exits 0 on many problems (an unknown key, a bad value) and only prints them, so any output
    counts as a failure.
    """
    argv = ["systemd-analyze", "verify", "--man=no", *map(str, units)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"checking the units: {' '.join(argv)} failed: {exc}") from None
    complaints = (done.stderr + done.stdout).strip()
    if done.returncode != 0 or complaints:
        raise SetupError(
            f"systemd-analyze verify found problems in the units (exit {done.returncode}):\n{complaints}"
        )


def enable_and_start(services: tuple[str, ...] = SERVICES, start: bool = True) -> None:
    """Reload systemd, enable the services and (``start``) start them (restart those already running)."""
    run(["systemctl", "daemon-reload"], "reloading systemd")
    run(["systemctl", "enable", *services], "enabling the services")
    if start:
        # kiln-agent reports ready only once a conductor acknowledged it: do not wait for it here.
        run(["systemctl", "restart", *[s for s in services if s != "kiln-agent"]], "starting the services")
        if "kiln-agent" in services:
            run(["systemctl", "restart", "--no-block", "kiln-agent"], "starting kiln-agent")
