"""The shipped systemd units: systemd-analyze verify finds nothing to say about them."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess

import pytest

UNIT_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "etc", "kiln", "systemd")
UNITS = ["kiln-agent", "kiln-conductor", "kiln-api"]
ANALYZE = shutil.which("systemd-analyze")
SYSTEM_UNITS = "/usr/lib/systemd/system"

needs_analyze = pytest.mark.skipif(
    ANALYZE is None or not os.path.isdir(SYSTEM_UNITS),
    reason="systemd-analyze is not installed (apt-get install -y systemd provides it)",
)


def _unit(name: str) -> str:
    with open(os.path.join(UNIT_DIR, f"{name}.service"), encoding="utf-8") as f:
        return f.read()


def _verify(path: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ANALYZE, "verify", "--man=no", path],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.dirname(path),
    )


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_unit_verifies_cleanly(name, tmp_path):
    text = _unit(name)
    shipped = f"ExecStart=/usr/local/bin/{name} --config-file /etc/kiln/kiln.conf"
    assert shipped in text
    # verify insists the binary exists; pip (as root) and the ramdisk put it in /usr/local/bin, this
    # checkout may not have it there.
    binary = shutil.which(name) or "/bin/true"
    path = tmp_path / f"{name}.service"
    path.write_text(text.replace(f"/usr/local/bin/{name}", binary))
    result = _verify(str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == ""


def _installed_root(root, name: str, text: str) -> str:
    """Lay the unit out as installed: /etc/systemd/system/<name>.service and /usr/local/bin/<name>."""
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    (units / f"{name}.service").write_text(text)
    bindir = root / "usr" / "local" / "bin"
    bindir.mkdir(parents=True)
    program = bindir / name
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    # the targets the units order against, as a Debian root has them
    shutil.copytree(SYSTEM_UNITS, root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    return f"/etc/systemd/system/{name}.service"


def _verify_installed(root) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ANALYZE, "verify", "--man=no", f"--root={root}", "/etc/systemd/system/" + root.name + ".service"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_installed_unit_verifies_unchanged(name, tmp_path):
    """The shipped text, installed as pip and the ramdisk install it, verifies with nothing substituted."""
    root = tmp_path / name
    _installed_root(root, name, _unit(name))
    result = _verify_installed(root)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == ""


@needs_analyze
def test_installed_unit_without_its_program_fails_verify(tmp_path):
    """Guard: verify under --root looks for the program in the root (/usr/bin/kiln-agent once failed)."""
    root = tmp_path / "kiln-agent"
    _installed_root(root, "kiln-agent", _unit("kiln-agent").replace("/usr/local/bin/", "/usr/bin/"))
    result = _verify_installed(root)
    assert result.returncode != 0
    assert "/usr/bin/kiln-agent is not executable" in result.stderr


@needs_analyze
def test_verify_does_report_a_broken_unit(tmp_path):
    """Guard: verify warns (with exit 0) on bad units, so an empty output is what proves a unit fine."""
    path = tmp_path / "broken.service"
    path.write_text("[Service]\nType=bogus\nExecStart=/bin/true\nWatchdogSecs=5\n")
    result = _verify(str(path))
    assert "Failed to parse service type" in result.stderr
    assert "Unknown key 'WatchdogSecs'" in result.stderr


def test_agent_unit_is_a_notify_service_with_a_watchdog():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(_unit("kiln-agent"))
    service = parser["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) >= 10
    assert service["Restart"] == "on-failure"
    assert service["StateDirectory"] == "kiln/agent" and service["StateDirectoryMode"] == "0700"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    families = service["RestrictAddressFamilies"].split()
    assert "AF_NETLINK" in families  # udev monitor
    assert "AF_PACKET" in families  # the LLDP listener's raw socket
    assert "PrivateDevices" not in service and "DevicePolicy" not in service  # it writes block devices


@pytest.mark.parametrize("name", ["kiln-conductor", "kiln-api"])
def test_servers_run_unprivileged(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(_unit(name))
    service = parser["Service"]
    assert service["User"] == "kiln"
    assert service["CapabilityBoundingSet"] == ""
    assert service["Restart"] == "on-failure"
