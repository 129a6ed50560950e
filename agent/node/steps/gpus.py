"""The ``verify_gpus`` clean step: the GPU acceptance gate, on the GPUs the agent reads now."""

from __future__ import annotations

from typing import Any

from agent.common import gpu_gate
from agent.node.steps.context import StepContext
from agent.node.steps.errors import StepError


def _xids(args: dict) -> list[int]:
    xids = args.get("xids", [])
    if not isinstance(xids, list) or any(isinstance(x, bool) or not isinstance(x, int) for x in xids):
        raise StepError(f"args.xids must be a list of Xid numbers (integers), not {xids!r}")
    return xids


def _expected(args: dict) -> dict | None:
    expected = args.get("expected")
    if expected is None:
        return None
    if not isinstance(expected, dict):
        raise StepError(f"args.expected must be an object (the node's expected GPUs), not {expected!r}")
    count = expected.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise StepError(f"args.expected.count must be a whole number of GPUs, not {count!r}")
    gpus = expected.get("gpus")
    if gpus is not None and (
        not isinstance(gpus, dict) or not all(isinstance(g, dict) for g in gpus.values())
    ):
        raise StepError(f"args.expected.gpus must map PCI addresses to objects, not {gpus!r}")
    switches = expected.get("nvswitches")
    if switches is not None and (
        not isinstance(switches, list) or not all(isinstance(a, str) for a in switches)
    ):
        raise StepError(f"args.expected.nvswitches must be a list of PCI addresses, not {switches!r}")
    return expected


def verify_gpus(ctx: StepContext, args: dict) -> dict[str, Any]:
    """Compare the GPUs found now with ``args["expected"]`` and their health; fail naming each finding.

    ``args``: ``expected`` (see agent.common.gpu_gate; null: health checks only) and ``xids`` (the
    Xid numbers that fail the gate). The result, passed or failed, carries ``findings`` and what
    was checked, so the conductor can quarantine the node naming the GPU.
    """
    expected = _expected(args)
    xids = _xids(args)
    inventory = ctx.inventory() or {}
    found = gpu_gate.physical_gpus(inventory)
    findings = gpu_gate.check_gpus(inventory, expected, xids)
    log = inventory.get("kernel_log") if isinstance(inventory.get("kernel_log"), dict) else {}
    result = {
        "gpus": [{"pci_address": g.get("pci_address"), "serial": g.get("serial")} for g in found],
        "boot_id": log.get("boot_id"),
        "findings": findings,
        "unchecked": gpu_gate.unchecked(inventory),
        "observed": gpu_gate.expectation_from_inventory(inventory),
    }
    if findings:
        raise StepError(f"GPU acceptance gate failed: {gpu_gate.describe(findings)}", details=result)
    return result
