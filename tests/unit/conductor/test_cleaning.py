"""Cleaning through the agent: on undeploy and provide, manual, aborted, timed out."""

from __future__ import annotations

import datetime
import shutil
import subprocess

import pytest
from oslo_config import cfg

from agent.common import exception, states
from agent.conductor import agent_commands, cleaning, timeouts
from agent.conductor.drivers import fake as fake_drivers
from agent.db import api as db_api
from tests.unit.conductor.deploy_stack import MIB, Stack

CONF = cfg.CONF


@pytest.fixture
def stack(tmp_path):
    """The in-process stack; its node is active with the image on its disk."""
    s = Stack(tmp_path)
    with open(s.images + "/disk.raw", "rb") as src, open(s.disk, "r+b") as dst:
        shutil.copyfileobj(src, dst)
    db_api.update_node(
        s.node.uuid,
        {
            "provision_state": states.ACTIVE,
            "power_state": states.POWER_ON,
            "driver_internal_info": {fake_drivers.POWER_KEY: states.POWER_ON},
        },
    )
    yield s
    s.close()
    for name in ("erase_devices_priority", "automated_clean"):
        CONF.clear_override(name, group="deploy")


def _has_table(path: str) -> bool:
    return subprocess.run(["sfdisk", "--dump", path], capture_output=True, check=False).returncode == 0


def test_undeploy_cleans_metadata_and_ends_available(stack) -> None:
    assert _has_table(stack.disk)
    stack.manager.change_provision_state({}, stack.node.uuid, "deleted")
    node = stack.wait_state(states.CLEANWAIT)
    assert node.driver_internal_info[cleaning.STEPS_KEY][0]["step"] == "erase_devices_metadata"
    assert node.driver_internal_info[fake_drivers.BOOT_DEVICE_KEY] == {
        "boot_device": "pxe",
        "persistent": False,
    }
    assert node.power_state == states.POWER_ON
    stack.boot_agent()
    node = stack.drive(states.AVAILABLE, states.CLEANFAIL)
    assert node.provision_state == states.AVAILABLE, node.last_error
    assert node.last_error is None
    assert node.power_state == states.POWER_OFF
    assert node.instance_info == {}
    assert not _has_table(stack.disk)
    with open(stack.disk, "rb") as fh:
        assert fh.read(512)[510:512] == b"\0\0"
        fh.seek(2 * MIB)
        assert fh.read(16) != b"\0" * 16  # metadata erase only: the data is still there
    for key in (*cleaning.CLEAN_KEYS, *agent_commands.OPERATION_KEYS):
        assert key not in node.driver_internal_info


def test_full_erase_when_configured(stack) -> None:
    CONF.set_override("erase_devices_priority", 10, group="deploy")
    stack.manager.change_provision_state({}, stack.node.uuid, "deleted")
    stack.wait_state(states.CLEANWAIT)
    stack.boot_agent()
    node = stack.drive(states.AVAILABLE, states.CLEANFAIL, timeout=60)
    assert node.provision_state == states.AVAILABLE, node.last_error
    with open(stack.disk, "rb") as fh:
        fh.seek(2 * MIB)
        assert fh.read(MIB) == b"\0" * MIB


def test_provide_with_automated_clean_off_skips_the_agent(stack) -> None:
    db_api.update_node(stack.node.uuid, {"provision_state": states.MANAGEABLE, "automated_clean": False})
    stack.manager.change_provision_state({}, stack.node.uuid, "provide")
    node = stack.wait_state(states.AVAILABLE)
    assert node.power_state == states.POWER_ON  # nothing booted, nothing powered
    assert _has_table(stack.disk)


def test_abort_in_clean_wait_fails_cleaning_and_powers_off(stack) -> None:
    stack.manager.change_provision_state({}, stack.node.uuid, "deleted")
    stack.wait_state(states.CLEANWAIT)
    stack.manager.change_provision_state({}, stack.node.uuid, "abort")
    node = stack.wait_state(states.CLEANFAIL)
    assert "aborted by request in state clean wait" in node.last_error
    assert node.power_state == states.POWER_OFF
    assert cleaning.STEPS_KEY not in node.driver_internal_info


def test_clean_callback_timeout(stack) -> None:
    stack.manager.change_provision_state({}, stack.node.uuid, "deleted")
    stack.wait_state(states.CLEANWAIT)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2)
    assert timeouts.check_callback_timeouts(now=later) == [stack.node.uuid]
    node = stack.node_now()
    assert node.provision_state == states.CLEANFAIL
    assert "[deploy]clean_callback_timeout" in node.last_error
    assert node.power_state == states.POWER_OFF


def test_manual_clean_ends_manageable(stack) -> None:
    db_api.update_node(stack.node.uuid, {"provision_state": states.MANAGEABLE})
    steps = [{"interface": "deploy", "step": "erase_devices_metadata"}]
    stack.manager.change_provision_state({}, stack.node.uuid, "clean", clean_steps=steps)
    stack.wait_state(states.CLEANWAIT)
    stack.boot_agent()
    node = stack.drive(states.MANAGEABLE, states.CLEANFAIL)
    assert node.provision_state == states.MANAGEABLE, node.last_error
    assert not _has_table(stack.disk)


def test_unknown_manual_clean_step_is_named() -> None:
    with pytest.raises(exception.InvalidParameterValue) as err:
        cleaning.check_manual_steps("n1", [{"interface": "vendor", "step": "flash"}])
    assert "clean_steps[0] vendor.flash is not a known clean step" in str(err.value)
    assert "deploy.erase_devices_metadata" in str(err.value)
    # bios, firmware and raid steps run in the conductor; the node's interfaces check them later
    bios = {"interface": "bios", "step": "apply_configuration", "args": {"settings": []}}
    assert cleaning.check_manual_steps("n1", [bios]) == [{**bios, "priority": 0}]


def test_automated_steps_follow_options() -> None:
    assert [s["step"] for s in cleaning.automated_steps()] == ["erase_devices_metadata"]
    CONF.set_override("erase_devices_priority", 5, group="deploy")
    try:
        assert cleaning.automated_steps() == [
            {"step": "erase_devices", "priority": 5, "interface": "deploy", "args": {}}
        ]
    finally:
        CONF.clear_override("erase_devices_priority", group="deploy")


def _public_key():
    from cryptography.hazmat.primitives import serialization

    with open(CONF.turnover.signing_key_file + ".pub", "rb") as fh:
        return serialization.load_pem_public_key(fh.read())


def test_cleaning_leaves_a_signed_turnover_record(stack) -> None:
    from agent.common import evidence

    db_api.update_node(stack.node.uuid, {"owner": "tenant-owner", "lessee": "tenant-lessee"})
    before = len(db_api.list_turnover_records(stack.node.uuid))
    CONF.set_override("erase_devices_priority", 10, group="deploy")
    stack.manager.change_provision_state({}, stack.node.uuid, "deleted")
    stack.wait_state(states.CLEANWAIT)
    stack.boot_agent()
    node = stack.drive(states.AVAILABLE, states.CLEANFAIL, timeout=60)
    assert node.provision_state == states.AVAILABLE, node.last_error
    rows = db_api.list_turnover_records(stack.node.uuid)
    assert len(rows) == before + 1
    served = evidence.served(rows[-1])
    record = evidence.verify(served, _public_key())
    assert record["format"] == evidence.FORMAT and record["outcome"] == "cleaned"
    assert record["before"] == {"owner": "tenant-owner", "lessee": "tenant-lessee"}
    assert record["started_at"] < record["ended_at"]
    assert [(d["step"], d["disk"]) for d in record["disks"]] == [("erase_devices", "/dev/vdb")]
    erased = record["disks"][0]
    assert erased["method"] in ("zero", "discard") and erased["verified"] is True
    samples = erased["samples"]
    assert samples["all_zero"] and len(samples["offsets"]) >= 2 and samples["nonzero_offsets"] == []
    assert record["gpu_memory"] == {"cleared": False, "why": "no clear_gpu_memory step ran in this cleaning"}
    for key in ("turnover_started_at", "turnover_before"):
        assert key not in node.driver_internal_info
    # A changed word breaks the signature; so does content that no longer matches the text.
    tampered = dict(served, record=served["record"].replace('"cleaned"', '"skipped"'))
    with pytest.raises(evidence.VerifyError, match="signature does not match"):
        evidence.verify(tampered, _public_key())
    with pytest.raises(evidence.VerifyError, match="content beside the record differs"):
        evidence.verify(dict(served, content={**served["content"], "outcome": "skipped"}), _public_key())


def test_failed_cleaning_is_recorded_too(stack) -> None:
    import json

    from agent.common import evidence
    from tests.unit.node.steps.test_erase import gfs2_superblock

    # A shared gfs2 filesystem on the disk: the agent refuses to erase it, and cleaning fails.
    dump = subprocess.run(["sfdisk", "--json", stack.disk], capture_output=True, text=True, check=True)
    table = json.loads(dump.stdout)
    gfs2_superblock(stack.disk, table["partitiontable"]["partitions"][0]["start"] * 512)
    stack.manager.change_provision_state({}, stack.node.uuid, "deleted")
    stack.wait_state(states.CLEANWAIT)
    stack.boot_agent()
    node = stack.drive(states.CLEANFAIL, states.AVAILABLE, timeout=60)
    assert node.provision_state == states.CLEANFAIL
    last = db_api.list_turnover_records(stack.node.uuid)[-1]
    record = evidence.verify(evidence.served(last), _public_key())
    assert record["outcome"].startswith("failed: Clean step erase_devices_metadata failed")
