"""The agent's verify_gpus step through the real StepRunner, on the hgx-h100 fixture's inventory."""

from __future__ import annotations

import pytest

from agent.common import gpu_gate
from agent.node.steps.context import StepContext
from agent.node.steps.errors import StepError
from agent.node.steps.gpus import verify_gpus
from agent.node.steps.runner import StepRunner
from tests.unit.common.test_gpu_gate import DEGRADED, XIDS, healthy_h100, inventory


def _run(conf, inv: dict, args: dict) -> dict:
    """Run verify_gpus in a StepRunner as the agent does; return the reported result."""
    reported = []
    runner = StepRunner(StepContext(conf, lambda: inv), report=lambda step, result: reported.append(result))
    runner.start("verify_gpus", args)
    runner.join(10)
    assert len(reported) == 1
    return reported[0]


def test_a_failed_gate_reports_its_findings_as_the_result(conf) -> None:
    result = _run(conf, inventory("hgx-h100"), {"expected": None, "xids": XIDS})
    assert result["status"] == "failed"
    assert result["error"].startswith(
        f"verify_gpus: GPU acceptance gate failed: GPU {DEGRADED} (serial unknown)"
    )
    assert [(f["check"], f["pci_address"]) for f in result["result"]["findings"]] == [
        ("pcie_link", DEGRADED),
        ("xid", DEGRADED),
    ]
    assert result["result"]["boot_id"] == "5d1c7a0e-7f3b-4d2a-9c8e-1b2a3c4d5e6f"


def test_a_passed_gate_reports_what_it_found(conf) -> None:
    inv = healthy_h100()
    result = _run(conf, inv, {"expected": gpu_gate.expectation_from_inventory(inv), "xids": XIDS})
    assert result["status"] == "succeeded", result["error"]
    assert result["result"]["findings"] == []
    assert len(result["result"]["gpus"]) == 8
    assert result["result"]["observed"] == gpu_gate.expectation_from_inventory(inv)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"expected": [8]}, "args.expected must be an object"),
        ({"expected": {"gpus": ["0000:18:00.0"]}}, "args.expected.gpus must map PCI addresses to objects"),
        ({"expected": {"gpus": {"0000:18:00.0": 1}}}, "args.expected.gpus must map PCI addresses to objects"),
        ({"expected": {"nvswitches": "0000:c9:00.0"}}, "args.expected.nvswitches must be a list"),
        ({"expected": {"count": "8"}}, "args.expected.count must be a whole number of GPUs"),
        ({"xids": "48,79"}, "args.xids must be a list of Xid numbers"),
        ({"xids": [48, True]}, "args.xids must be a list of Xid numbers"),
    ],
)
def test_bad_arguments_are_named(conf, args, named) -> None:
    with pytest.raises(StepError, match=named):
        verify_gpus(StepContext(conf, healthy_h100), args)
