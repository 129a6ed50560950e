"""power_off / reboot (simulated unless allowed) and collect_logs."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest

from agent.node.steps import logs, power
from agent.node.steps.errors import StepError


def test_power_actions_only_report_by_default(ctx):
    assert power.power_off(ctx, {}) == {"action": "power_off", "performed": False, "simulated": True}
    assert power.reboot(ctx, {"delay_s": 0}) == {"action": "reboot", "performed": False, "simulated": True}


def test_power_delay_checked(ctx):
    with pytest.raises(StepError, match="delay_s must be a number of seconds in 0..300"):
        power.reboot(ctx, {"delay_s": "soon"})


def test_collect_logs(ctx, conf, tmp_path):
    log = tmp_path / "agent.log"
    log.write_text("2026-01-01 kiln-agent started\n")
    conf.override("log_file", str(log), group="agent")
    conf.override("collect_logs_journal_lines", 0, group="agent")
    out = logs.collect_logs(ctx, {})
    assert out["files"] == ["kiln-agent.log", "inventory.json"]
    assert out["missing"] == ["journal.log: journalctl unavailable"]
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(out["logs"])), mode="r:gz") as tar:
        assert tar.extractfile("kiln-agent.log").read() == b"2026-01-01 kiln-agent started\n"
        inventory = json.load(tar.extractfile("inventory.json"))
    assert [d["name"] for d in inventory["disks"]] == ["/dev/vda", "/dev/vdb"]


def test_collect_logs_with_missing_log_file(ctx, conf, tmp_path):
    conf.override("log_file", str(tmp_path / "absent.log"), group="agent")
    conf.override("collect_logs_journal_lines", 0, group="agent")
    out = logs.collect_logs(ctx, {})
    assert out["files"] == ["inventory.json"]
    assert out["missing"][0].startswith("kiln-agent.log: [Errno 2] No such file or directory")
