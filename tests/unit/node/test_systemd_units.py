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

needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (apt-get install -y systemd provides it)"
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
    shipped = f"ExecStart=/usr/bin/{name} --config-file /etc/kiln/kiln.conf"
    assert shipped in text
    # verify insists the binary exists; packages install it in /usr/bin, this checkout may not.
    binary = shutil.which(name) or "/bin/true"
    path = tmp_path / f"{name}.service"
    path.write_text(text.replace(f"/usr/bin/{name}", binary))
    result = _verify(str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == ""


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
    assert service["StateDirectory"] == "kiln" and service["StateDirectoryMode"] == "0700"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert "AF_NETLINK" in service["RestrictAddressFamilies"]  # udev monitor


@pytest.mark.parametrize("name", ["kiln-conductor", "kiln-api"])
def test_servers_run_unprivileged(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(_unit(name))
    service = parser["Service"]
    assert service["User"] == "kiln"
    assert service["CapabilityBoundingSet"] == ""
    assert service["Restart"] == "on-failure"
