"""The GPU acceptance gate on the conductor's side: the expectation, the clean step, the quarantine.

The ``verify_gpus`` clean step runs in the node's agent (agent/node/steps/gpus.py), like every
clean step, on the GPUs the agent reads in the boot it cleans in. The conductor gives it what
the node should have, as the step's ``expected`` argument:

- the node's **first accepted inventory**: when an inventory is stored and the node has no
  baseline yet (or, for a node enrolled before the gate existed, the oldest inventory kept in
  its history when the gate first runs), its GPUs (per PCI address: SKU, serial, memory, NUMA
  node, PCIe link maximum, active NVLinks) and NVSwitches are kept in driver_internal_info
  ``kiln_gpu_baseline``;
- the node's **properties** ``gpu_count`` and ``gpu_sku`` (a catalogue SKU such as
  ``H100_SXM5_80GB``, or its trait ``CUSTOM_GPU_H100_SXM5_80GB``), set by the operator, which
  override the baseline's count and SKUs.

A manual ``verify_gpus`` with ``{"update_baseline": true}`` checks against the properties only
and, when it passes, keeps the GPUs found as the new baseline (after a GPU was replaced).

Traits are not an expectation: Kiln rewrites its GPU traits from every inventory, so they
follow the hardware rather than say what it should be.

``burnin_gpus`` (off by default, ``[deploy]burnin_gpus_priority``) loads the GPUs for a duration;
its findings quarantine the node the same way. ``clear_gpu_memory`` resets the GPUs for the
turnover record.

A node that fails the gate is **quarantined**: cleaning fails (``clean failed``), maintenance is
set with a reason naming each GPU (PCI address, serial) and check, and the node gets the trait
CUSTOM_GPU_QUARANTINE, which Kiln never removes: allocations skip such a node until an operator
removes the trait.
"""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging

from agent.common import exception, gpu_gate
from agent.common.config import CONF
from agent.db import api as db_api
from agent.db import inventory as db_inventory

LOG = logging.getLogger(__name__)

STEP = "verify_gpus"
#: The GPU burn-in (agent.node.steps.burnin) and the GPU memory reset (agent.node.steps.gpu_memory).
BURNIN_STEP = "burnin_gpus"
CLEAR_STEP = "clear_gpu_memory"
#: Failed steps whose findings quarantine the node, and how the reason begins.
QUARANTINE_STEPS = {STEP: "GPU acceptance gate failed", BURNIN_STEP: "GPU burn-in failed"}
#: driver_internal_info key: the GPUs of the node's first accepted inventory.
INFO_GPU_BASELINE = "kiln_gpu_baseline"
TRAIT_QUARANTINE = "CUSTOM_GPU_QUARANTINE"
#: Manual verify_gpus argument: check against the properties only, then keep the GPUs found as the baseline.
UPDATE_ARG = "update_baseline"
#: gpu_sku may be given as the trait Kiln derives (CUSTOM_GPU_H100_SXM5_80GB) or as the SKU alone.
SKU_TRAIT_PREFIX = "CUSTOM_GPU_"
#: maintenance_reason is text; a node with many failing GPUs still gets a readable reason.
MAX_REASON = 4000


def record_baseline(internal: dict[str, Any], inventory: dict) -> None:
    """Keep ``inventory``'s GPUs as the node's expectation in ``internal`` unless one is kept already."""
    if not isinstance(internal.get(INFO_GPU_BASELINE), dict):
        internal[INFO_GPU_BASELINE] = gpu_gate.expectation_from_inventory(inventory)


def _count_property(node: Any, value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise exception.InvalidParameterValue(
        err=f"Node {node.uuid}: property gpu_count must be a whole number of GPUs, not {value!r}."
    )


def expectation(node: Any, use_baseline: bool = True) -> dict[str, Any] | None:
    """What the node's GPUs should be (baseline, overridden by properties); None when nothing is known."""
    props = node.properties or {}
    baseline = (node.driver_internal_info or {}).get(INFO_GPU_BASELINE) if use_baseline else None
    expected = dict(baseline) if isinstance(baseline, dict) else {}
    if props.get("gpu_count") is not None:
        expected["count"] = _count_property(node, props["gpu_count"])
    sku = props.get("gpu_sku")
    if sku is not None:
        if not isinstance(sku, str) or not sku.strip():
            raise exception.InvalidParameterValue(
                err=f"Node {node.uuid}: property gpu_sku must name a GPU SKU (e.g. H100_SXM5_80GB), "
                f"not {sku!r}."
            )
        expected["sku"] = sku.strip().upper().removeprefix(SKU_TRAIT_PREFIX)
    return expected or None


def ensure_baseline(task) -> None:
    """Give a node without a baseline (enrolled before the gate existed) its oldest stored inventory's."""
    if isinstance((task.node.driver_internal_info or {}).get(INFO_GPU_BASELINE), dict):
        return
    history = [
        h for h in db_inventory.list_inventory_history(task.node.id) if isinstance(h["inventory"], dict)
    ]
    if not history:
        return
    info = dict(task.node.driver_internal_info or {})
    record_baseline(info, history[-1]["inventory"])  # newest first: the last is the first accepted
    task.update_node({"driver_internal_info": info})
    LOG.info(
        "Node %s: GPU baseline taken from its inventory of %s", task.node.uuid, history[-1]["created_at"]
    )


def gate_steps(task, steps: list[dict[str, Any]], manual: bool) -> list[dict[str, Any]]:
    """``steps`` with the GPU steps added (automated cleaning, those enabled) and their arguments filled.

    verify_gpus, burnin_gpus and clear_gpu_memory join automated cleaning when their
    ``[deploy]*_priority`` is above 0; manual cleaning runs them when asked.

    Automated steps are returned highest priority first, as Ironic runs them.
    """
    out = [dict(s) for s in steps]
    if not manual:
        for name, priority in (
            (STEP, CONF.deploy.verify_gpus_priority),
            (BURNIN_STEP, CONF.deploy.burnin_gpus_priority),
            (CLEAR_STEP, CONF.deploy.clear_gpu_memory_priority),
        ):
            if priority > 0 and not any(s["step"] == name for s in out):
                out.append({"step": name, "priority": priority, "interface": "deploy", "args": {}})
    for step in out:
        if step["step"] == BURNIN_STEP:
            step["args"] = _burnin_args(task.node, step.get("args") or {})
    if any(s["step"] == STEP for s in out):
        ensure_baseline(task)
    node = task.node
    for step in out:
        if step["step"] == STEP:
            args = dict(step.get("args") or {})
            update = args.get(UPDATE_ARG, False)
            if not isinstance(update, bool) or (update and not manual):
                raise exception.InvalidParameterValue(
                    err=f"Node {node.uuid}: clean step verify_gpus: args.{UPDATE_ARG} must be true or false "
                    f"(and only in manual cleaning), not {update!r}."
                )
            if "expected" not in args:
                args["expected"] = expectation(node, use_baseline=not update)
            args.setdefault("xids", list(CONF.deploy.verify_gpus_xids))
            step["args"] = args
    if not manual:
        out.sort(key=lambda s: -int(s.get("priority") or 0))
    return out


def _burnin_args(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    """burnin_gpus's arguments with the configured defaults; a bad duration or fraction is refused now."""
    out = dict(args)
    out.setdefault("duration", CONF.deploy.burnin_gpus_duration)
    out.setdefault("min_throughput", CONF.deploy.burnin_gpus_min_throughput)
    for key, high in (("duration", 7 * 24 * 3600), ("min_throughput", 1)):
        value = out[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= high:
            raise exception.InvalidParameterValue(
                err=f"Node {node.uuid}: clean step {BURNIN_STEP}: args.{key} must be a number above 0 and "
                f"at most {high}, not {value!r}."
            )
    return out


def step_passed(task, step: dict[str, Any], result: dict[str, Any]) -> None:
    """After clean ``step`` passed: a verify_gpus with update_baseline keeps the GPUs found as baseline."""
    output = (result or {}).get("result") or {}
    if step.get("step") == STEP and output.get("unchecked"):
        LOG.warning("Node %s passed the GPU gate partly: %s", task.node.uuid, "; ".join(output["unchecked"]))
    observed = output.get("observed")
    if (
        step.get("step") != STEP
        or not (step.get("args") or {}).get(UPDATE_ARG)
        or not isinstance(observed, dict)
    ):
        return
    info = dict(task.node.driver_internal_info or {})
    info[INFO_GPU_BASELINE] = observed
    task.update_node({"driver_internal_info": info})
    LOG.info(
        "Node %s: GPU baseline replaced by the %s GPU(s) found now", task.node.uuid, observed.get("count")
    )


def quarantine(task, step: str, result: dict[str, Any]) -> bool:
    """After a failed ``verify_gpus`` or ``burnin_gpus`` with findings: maintenance on, its reason, the trait.

    Returns whether the node was quarantined (other failures, e.g. bad arguments, are not the GPUs'
    fault and only fail cleaning).
    """
    findings = ((result or {}).get("result") or {}).get("findings") if step in QUARANTINE_STEPS else None
    if not findings or not isinstance(findings, list):
        return False
    reason = f"{QUARANTINE_STEPS[step]}: {gpu_gate.describe(findings)}"
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 3] + "..."
    db_api.add_node_trait(task.node.id, TRAIT_QUARANTINE)
    task.update_node({"maintenance": True, "maintenance_reason": reason})
    LOG.error("Node %s quarantined (trait %s): %s", task.node.uuid, TRAIT_QUARANTINE, reason)
    return True
