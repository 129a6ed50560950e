"""Cleaning: automated (on undeploy and on provide) and manual, through the node's agent.

Automated cleaning erases the disks' metadata (partition tables, signatures, backup GPT), or the
whole disks when [deploy]erase_devices_priority > 0, and runs the GPU acceptance gate when
[deploy]verify_gpus_priority > 0 (agent.conductor.gpu_acceptance). A deploy interface that can
clean through the agent offers ``prepare_cleaning`` / ``tear_down_cleaning``; with one that cannot
(fake), cleaning has nothing to do and ends at once. Steps of the bios, firmware and raid interfaces
run in the conductor (agent.conductor.bmc_steps); a manual clean of only those boots no ramdisk.
Progress lives in driver_internal_info:

    clean_steps        the steps to run, [{"step", "priority", "interface", "args"}]
    clean_step_index   index of the next step
    clean_step         the step running now
    clean_manual       true for manual cleaning (ends in "manageable", not "available")
"""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging

from agent.common import exception, states
from agent.common.config import CONF
from agent.common.steps import check_steps
from agent.common.utils import error_text
from agent.conductor import agent_commands, bmc_steps, failures, gpu_acceptance, turnover

LOG = logging.getLogger(__name__)


AGENT_CLEAN_STEPS = (
    "erase_devices",
    "erase_devices_metadata",
    gpu_acceptance.STEP,
    gpu_acceptance.BURNIN_STEP,
    gpu_acceptance.CLEAR_STEP,
)
HOLD_STEP = "hold"
STEPS_KEY = "clean_steps"
INDEX_KEY = "clean_step_index"
STEP_KEY = "clean_step"
MANUAL_KEY = "clean_manual"
NO_RAMDISK_KEY = "clean_without_ramdisk"  # every step runs in the conductor: no agent to tear down
CLEAN_KEYS = (STEPS_KEY, INDEX_KEY, STEP_KEY, MANUAL_KEY, NO_RAMDISK_KEY)


def automated_clean_enabled(node: Any) -> bool:
    """Whether automated cleaning runs for ``node`` (its own automated_clean field wins when set)."""
    if node.automated_clean is not None:
        return bool(node.automated_clean)
    return CONF.deploy.automated_clean


def automated_steps() -> list[dict[str, Any]]:
    """The automated clean steps from the options: a full erase, else a metadata erase, else none."""
    if CONF.deploy.erase_devices_priority > 0:
        return [_step("erase_devices", CONF.deploy.erase_devices_priority)]
    if CONF.deploy.erase_devices_metadata_priority > 0:
        return [_step("erase_devices_metadata", CONF.deploy.erase_devices_metadata_priority)]
    return []


def _step(name: str, priority: int, args: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"step": name, "priority": priority, "interface": "deploy", "args": dict(args or {})}


def check_manual_steps(node_uuid: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate manual clean steps: the agent's, or ``hold``. Raise naming the bad step."""
    out = []
    for index, step in enumerate(steps):
        name, iface = step.get("step"), step.get("interface")
        if name == HOLD_STEP:  # Ironic's reserved step, in any interface: park in "clean hold"
            out.append(
                {"step": name, "priority": 0, "interface": iface, "args": dict(step.get("args") or {})}
            )
            continue
        if bmc_steps.is_conductor_step(step):  # bios, firmware, raid: checked against the node's driver
            out.append(bmc_steps.manual_step(step))
            continue
        if iface != "deploy" or name not in AGENT_CLEAN_STEPS:
            raise exception.InvalidParameterValue(
                err=f"Node {node_uuid}: clean_steps[{index}] {iface}.{name} is not a known clean step; "
                f"known: {', '.join('deploy.' + s for s in AGENT_CLEAN_STEPS)}, <any>.{HOLD_STEP}, and the "
                "steps of the node's bios, firmware and raid interfaces."
            )
        out.append(_step(name, 0, step.get("args")))
    return out


def start_provide(task) -> None:
    """Move a manageable node towards available through automated cleaning (in a worker thread)."""
    task.process_event("provide", callback=do_node_clean, call_args=(task, None))


def start_clean(task, clean_steps: Any = None, disable_ramdisk: bool | None = None) -> None:
    """Start manual cleaning with ``clean_steps``; the node ends in manageable.

    ``disable_ramdisk`` asks to clean without booting the agent: every clean step Kiln has runs in
    the agent, so such a request is refused naming the steps, never ignored.
    """
    steps = check_steps(clean_steps, "clean_steps", task.node.uuid, required=True)
    known = check_manual_steps(task.node.uuid, steps)
    gpu_acceptance.gate_steps(task, known, manual=True)  # bad verify_gpus arguments: refused now
    bmc_steps.check(task, known)
    in_agent = [s for s in known if not bmc_steps.is_conductor_step(s)]
    if disable_ramdisk and in_agent:
        names = ", ".join(f"deploy.{s['step']}" for s in in_agent)
        raise exception.InvalidParameterValue(
            err=f"Node {task.node.uuid}: disable_ramdisk cannot be honoured: clean step(s) {names} run in "
            "the agent ramdisk. Leave disable_ramdisk out (or false) to clean through the agent."
        )
    task.process_event(
        "clean", callback=do_node_clean, call_args=(task, steps), target_state=states.MANAGEABLE
    )


def _can_clean(task) -> bool:
    return hasattr(task.driver.deploy, "prepare_cleaning")


def do_node_clean(task, clean_steps: list[dict[str, Any]] | None = None) -> None:
    """Clean the node (in "cleaning"): boot the agent and wait, or finish at once when nothing to do.

    ``clean_steps`` None means automated cleaning; a list means manual cleaning, which ends in
    "manageable". Any failure fails cleaning ("clean failed") with the reason in last_error.
    """
    manual = clean_steps is not None
    node = task.node
    agent_commands.update_internal(task, **turnover.note_start(node))
    try:
        if manual:
            steps = gpu_acceptance.gate_steps(task, check_manual_steps(node.uuid, clean_steps), manual)
        elif automated_clean_enabled(node):
            steps = gpu_acceptance.gate_steps(task, automated_steps(), manual)
        else:
            LOG.info("Node %s: automated cleaning is disabled; skipping it", node.uuid)
            steps = []
        if steps and all(bmc_steps.is_conductor_step(s) for s in steps):
            # All through the BMC: no ramdisk to boot.
            agent_commands.update_internal(
                task, **{STEPS_KEY: steps, INDEX_KEY: 0, MANUAL_KEY: manual, NO_RAMDISK_KEY: True}
            )
            continue_cleaning(task)
            return
        if not steps or not _can_clean(task):
            if steps:
                LOG.info(
                    "Node %s: deploy interface %s cannot clean through an agent; nothing to erase",
                    node.uuid,
                    node.deploy_interface,
                )
            task.driver.network.add_cleaning_network(task)
            task.driver.network.remove_cleaning_network(task)
            _finish(task, manual)
            return
        agent_commands.update_internal(
            task, **{STEPS_KEY: steps, INDEX_KEY: 0, STEP_KEY: None, MANUAL_KEY: manual}
        )
        result = task.driver.deploy.prepare_cleaning(task)
    except Exception as exc:  # noqa: BLE001 - any failure fails cleaning with its message
        _fail(task, f"Cleaning of node {node.uuid} failed while preparing: {error_text(exc)}")
        return
    if result == states.CLEANWAIT:
        task.process_event("wait")
    else:
        continue_cleaning(task)


def continue_cleaning(task) -> None:
    """Start the next clean step on the agent, or finish cleaning when all are done."""
    info = agent_commands.internal(task)
    steps = info.get(STEPS_KEY) or []
    index = int(info.get(INDEX_KEY) or 0)
    if task.node.provision_state == states.CLEANWAIT:
        task.process_event("resume")
    if index >= len(steps):
        try:
            if not info.get(NO_RAMDISK_KEY):
                task.driver.deploy.tear_down_cleaning(task)
        except Exception as exc:  # noqa: BLE001
            _fail(task, f"Cleaning of node {task.node.uuid} failed while tearing down: {error_text(exc)}")
            return
        _finish(task, bool(info.get(MANUAL_KEY)))
        return
    step = steps[index]
    if step["step"] == HOLD_STEP:  # "unhold" goes to "clean wait"; the next heartbeat runs the next step
        agent_commands.update_internal(task, **{STEP_KEY: step, INDEX_KEY: index + 1})
        task.process_event("hold")
        LOG.info("Node %s: clean step hold; waiting for unhold", task.node.uuid)
        return
    agent_commands.update_internal(task, **{STEP_KEY: step})
    if bmc_steps.is_conductor_step(step):
        try:
            bmc_steps.run(task, step)
        except Exception as exc:  # noqa: BLE001
            _fail(
                task,
                f"Clean step {step['interface']}.{step['step']} failed on node {task.node.uuid}: "
                f"{error_text(exc)}",
            )
            return
        agent_commands.update_internal(task, **{INDEX_KEY: index + 1, STEP_KEY: None})
        continue_cleaning(task)  # one frame per step; a clean has a handful
        return
    try:
        done = agent_commands.start_agent_command(task, step["step"], step.get("args") or {}, "clean")
    except Exception as exc:  # noqa: BLE001
        _fail(task, f"Clean step {step['step']} failed on node {task.node.uuid}: {error_text(exc)}")
        return
    if done is None:
        task.process_event("wait")
        return
    finish_agent_clean_step(task, step["step"], done)


def finish_agent_clean_step(task, step: str, result: dict[str, Any]) -> None:
    """A clean step ended on the agent: go to the next one, or fail cleaning naming the error."""
    error = agent_commands.result_error(step, result)
    if error is not None:
        _fail(task, f"Clean step {step} failed on node {task.node.uuid}: {error}")
        gpu_acceptance.quarantine(task, step, result)
        return
    agent_commands.record_result(task, step, result)
    gpu_acceptance.step_passed(task, agent_commands.internal(task).get(STEP_KEY) or {}, result)
    index = int(agent_commands.internal(task).get(INDEX_KEY) or 0) + 1
    agent_commands.update_internal(task, **{INDEX_KEY: index, STEP_KEY: None})
    continue_cleaning(task)


def _record(task, outcome: str) -> None:
    """Sign and keep the turnover record of this cleaning (agent.conductor.turnover)."""
    manual = bool(agent_commands.internal(task).get(MANUAL_KEY))
    turnover.record_cleaning(task.node, agent_commands.step_results(task), manual, outcome)
    agent_commands.clear_operation(task, turnover.STARTED_KEY, turnover.BEFORE_KEY)


def _fail(task, message: str) -> None:
    _record(task, f"failed: {message}")
    failures.fail(task, message)


def _finish(task, manual: bool) -> None:
    _record(task, "cleaned")
    agent_commands.clear_operation(task, *CLEAN_KEYS)
    bmc_steps.refresh_caches(task)
    # A retired node is cleaned on undeploy but goes back to manageable, never available (Ironic).
    task.process_event("manage" if manual or task.node.retired else "done")
    LOG.info("Node %s cleaned; now %s", task.node.uuid, task.node.provision_state)
