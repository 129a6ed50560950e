"""burnin_gpus and clear_gpu_memory in cleaning: quarantine on a failed burn-in, GPUs in the turnover record.

The real conductor, agent endpoint and step runner (deploy_stack, as test_gpu_gate); dcgmi is the
executable fake of the step tests; NVML is absent here, as it is from a ramdisk without nvidia-ml-py.
"""

from __future__ import annotations

import pytest
from oslo_config import cfg
from oslo_messaging.rpc.dispatcher import ExpectedException

from agent.common import evidence, states
from agent.conductor import cleaning, gpu_acceptance
from agent.db import api as db_api
from tests.unit.common.test_gpu_gate import DEGRADED, healthy_h100
from tests.unit.conductor.deploy_stack import Stack
from tests.unit.conductor.test_gpu_gate import _accept_first_inventory, _node_with
from tests.unit.node.steps.test_burnin import install_fake_dcgmi

CONF = cfg.CONF


@pytest.fixture
def stack(tmp_path):
    """The in-process stack with the gate on; the node is manageable (as test_gpu_gate's)."""
    s = Stack(tmp_path)
    CONF.set_override("verify_gpus_priority", 100, group="deploy")
    db_api.update_node(s.node.uuid, {"provision_state": states.MANAGEABLE, "resource_class": "gpu"})
    yield s
    s.close()
    CONF.clear_override("verify_gpus_priority", group="deploy")


@pytest.fixture
def fake_dcgmi(tmp_path, monkeypatch):
    """The executable fake dcgmi of the step tests, first on PATH."""
    return install_fake_dcgmi(tmp_path, monkeypatch)


@pytest.fixture
def gpu_steps():
    """burnin_gpus after the metadata erase, clear_gpu_memory last, in automated cleaning."""
    CONF.set_override("burnin_gpus_priority", 90, group="deploy")
    CONF.set_override("clear_gpu_memory_priority", 10, group="deploy")
    CONF.set_override("burnin_gpus_duration", 900, group="deploy")
    yield
    for name in ("burnin_gpus_priority", "clear_gpu_memory_priority", "burnin_gpus_duration"):
        CONF.clear_override(name, group="deploy")


def _public_key():
    from cryptography.hazmat.primitives import serialization

    with open(CONF.turnover.signing_key_file + ".pub", "rb") as fh:
        return serialization.load_pem_public_key(fh.read())


def _clean(stack, inventory: dict):
    stack.agent.inventory = _node_with(stack, inventory)
    stack.manager.change_provision_state({}, stack.node.uuid, "provide")
    node = stack.wait_state(states.CLEANWAIT)
    steps = node.driver_internal_info[cleaning.STEPS_KEY]
    assert [s["step"] for s in steps] == [
        "verify_gpus",
        "erase_devices_metadata",
        "burnin_gpus",
        "clear_gpu_memory",
    ]
    assert steps[2]["args"] == {"duration": 900, "min_throughput": 0.5}
    stack.boot_agent()
    return stack.drive(states.AVAILABLE, states.CLEANFAIL, timeout=60)


def _record(stack) -> dict:
    last = db_api.list_turnover_records(stack.node.uuid)[-1]
    return evidence.verify(evidence.served(last), _public_key())


def test_a_failed_burnin_quarantines_the_node_naming_gpu_serial_and_test(
    stack, gpu_steps, fake_dcgmi
) -> None:
    _accept_first_inventory(stack, healthy_h100())
    fake_dcgmi("dcgm4-level2-fail.json", rc=226)
    node = _clean(stack, healthy_h100())
    assert node.provision_state == states.CLEANFAIL and node.maintenance is True
    assert gpu_acceptance.TRAIT_QUARANTINE in node.traits
    assert node.maintenance_reason.startswith(
        f"GPU burn-in failed: GPU {DEGRADED} (serial 1654024075045): burnin: DCGM diag level 2 test 'memory' "
        "fail: A memory mismatch was detected on GPU 6"
    )
    assert "Clean step burnin_gpus failed" in node.last_error
    assert fake_dcgmi.log.read_text() == "diag -r 2 -j\n"
    record = _record(stack)
    assert record["outcome"].startswith("failed: Clean step burnin_gpus failed")
    assert record["gpu_memory"]["why"] == "no clear_gpu_memory step ran in this cleaning"


def test_a_passed_burnin_then_the_gpus_in_the_turnover_record(stack, gpu_steps, fake_dcgmi) -> None:
    _accept_first_inventory(stack, healthy_h100())
    fake_dcgmi("dcgm4-level2-pass.json")
    node = _clean(stack, healthy_h100())
    assert node.provision_state == states.AVAILABLE, node.last_error
    assert not node.maintenance
    document = evidence.served(db_api.list_turnover_records(stack.node.uuid)[-1])
    record = evidence.verify(document, _public_key())
    assert record["gpu_memory"] == {
        "cleared": False,
        "gpu_count": 8,
        "why": "8 of 8 GPU(s) not cleared (see gpus)",
    }
    assert sorted(g["pci_address"] for g in record["gpus"]) == sorted(
        g["pci_address"] for g in healthy_h100()["gpus"]
    )
    assert all(
        set(g) == set(("pci_address", "serial", "cleared", "method", "why_not")) for g in record["gpus"]
    )
    assert all(
        g["cleared"] is False and g["why_not"].startswith("NVML not available: nvidia-ml-py does not import")
        for g in record["gpus"]
    )
    lines = evidence.summary(record)
    assert lines[2] == "  GPU memory cleared: False (8 of 8 GPU(s) not cleared (see gpus))"
    assert lines[3].startswith("    GPU 0000:18:00.0 (serial unknown): not cleared: NVML not available")
    # A GPU claimed cleared after signing breaks the signature.
    tampered = document["record"].replace('"cleared":false,"method":null', '"cleared":true,"method":"x"', 1)
    assert tampered != document["record"]
    with pytest.raises(evidence.VerifyError, match="signature does not match"):
        evidence.verify(
            {"record": tampered, "signature": document["signature"], "key_id": document["key_id"]},
            _public_key(),
        )


def test_burnin_without_a_tool_fails_cleaning_without_quarantine(stack, gpu_steps) -> None:
    _accept_first_inventory(stack, healthy_h100())
    node = _clean(stack, healthy_h100())
    assert node.provision_state == states.CLEANFAIL
    assert "dcgmi (NVIDIA DCGM) is not on PATH and cupy does not import" in node.last_error
    assert not node.maintenance and gpu_acceptance.TRAIT_QUARANTINE not in node.traits


def test_manual_burnin_with_a_bad_duration_is_refused(stack) -> None:
    step = {"interface": "deploy", "step": "burnin_gpus", "args": {"duration": 0}}
    with pytest.raises(ExpectedException) as err:
        stack.manager.change_provision_state({}, stack.node.uuid, "clean", clean_steps=[step])
    assert "clean step burnin_gpus: args.duration must be a number above 0" in str(err.value.exc_info[1])
