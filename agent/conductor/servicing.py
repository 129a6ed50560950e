"""Servicing an active node (Ironic's "service" verb, API 1.87): steps by the conductor or the agent.

Conductor steps run here at once: ``hold`` parks the node in "service hold" until an operator sends
"unhold" (or "abort"), and ``power_on``, ``power_off`` and ``reboot`` act on the BMC (Ironic's
reserved step names, in any interface), and the bios, firmware and raid interfaces' steps
(bios.apply_configuration, bios.factory_reset, firmware.update, raid.create_configuration,
raid.delete_configuration) run through the BMC as in cleaning. Agent steps (deploy.collect_logs,
deploy.get_root_device, deploy.verify_gpus) need the ramdisk: the instance is powered off, taken off
its tenant networks and the agent boots on the cleaning network ("service wait"); its steps run one at
a time as in cleaning, and at the end the node boots its instance from disk again, back on its
tenant networks ("active").

Any failure moves the node to "service failed", never leaving it in "servicing". "abort" from
"service wait" or "service hold" fails the servicing, then, as from "service failed", returns the
node to "active", booting its instance again when the ramdisk had replaced it (Ironic's behaviour).

Progress lives in driver_internal_info:

    service_steps       the steps to run, [{"step", "interface", "args", "priority"}]
    service_step_index  index of the next step
    service_step        the step running now (shown as the node's service_step)
    service_ramdisk     true when the agent ramdisk was booted for this servicing
    service_bmc_steps_run  true once a bios/firmware/raid step ran (their caches are re-read at the end)
"""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging

from agent.common import exception, states
from agent.common.steps import check_steps
from agent.common.utils import error_text
from agent.conductor import agent_boot, agent_commands, bmc_steps, failures, gpu_acceptance
from agent.conductor.drivers import base

LOG = logging.getLogger(__name__)

STEPS_KEY = "service_steps"
INDEX_KEY = "service_step_index"
STEP_KEY = "service_step"
RAMDISK_KEY = "service_ramdisk"
BMC_KEY = "service_bmc_steps_run"
SERVICE_KEYS = (STEPS_KEY, INDEX_KEY, STEP_KEY, RAMDISK_KEY, BMC_KEY)

HOLD = "hold"
POWER_STEPS = {"power_on": states.POWER_ON, "power_off": states.POWER_OFF, "reboot": states.REBOOT}
RESERVED_STEPS = (HOLD, *POWER_STEPS)
AGENT_SERVICE_STEPS = ("collect_logs", "get_root_device", gpu_acceptance.STEP)


def check_service_steps(node_uuid: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate service steps (reserved conductor steps, or the agent's); raise naming the bad one."""
    out = []
    for index, step in enumerate(steps):
        name, iface = step.get("step"), step.get("interface")
        agent_step = iface == "deploy" and name in AGENT_SERVICE_STEPS
        if name not in RESERVED_STEPS and not agent_step and not bmc_steps.is_conductor_step(step):
            known = [f"<any>.{s}" for s in RESERVED_STEPS] + [f"deploy.{s}" for s in AGENT_SERVICE_STEPS]
            known += [f"{i}.* (the node's {i}_interface)" for i in bmc_steps.INTERFACES]
            raise exception.InvalidParameterValue(
                err=f"Node {node_uuid}: service_steps[{index}] {iface}.{name} is not a known service step; "
                f"known: {', '.join(known)}."
            )
        out.append({"step": name, "interface": iface, "priority": 0, "args": dict(step.get("args") or {})})
    return out


def needs_agent(steps: list[dict[str, Any]]) -> bool:
    """Whether any of ``steps`` runs in the agent ramdisk."""
    return any(s["step"] not in RESERVED_STEPS and not bmc_steps.is_conductor_step(s) for s in steps)


def without_agent(node: Any) -> bool:
    """Whether ``node`` is being serviced without the agent ramdisk (so no heartbeat is due)."""
    servicing_states = (states.SERVICING, states.SERVICEWAIT, states.SERVICEHOLD)
    info = node.driver_internal_info or {}
    return node.provision_state in servicing_states and info.get(RAMDISK_KEY) is False


def _can_boot_agent(task) -> bool:
    return hasattr(task.driver.deploy, "prepare_cleaning")


def start_service(task, service_steps: Any = None, disable_ramdisk: bool | None = None) -> None:
    """Check ``service_steps`` and start servicing the active node in a worker thread."""
    node = task.node
    steps = check_service_steps(
        node.uuid, check_steps(service_steps, "service_steps", node.uuid, required=True)
    )
    bmc_steps.check(task, steps, "service_steps")  # bios/firmware/raid: offered, arguments sound
    if needs_agent(steps):
        names = ", ".join(f"deploy.{s['step']}" for s in steps if needs_agent([s]))
        if disable_ramdisk:
            raise exception.InvalidParameterValue(
                err=f"Node {node.uuid}: disable_ramdisk cannot be honoured: service step(s) {names} run in "
                "the agent ramdisk. Leave disable_ramdisk out (or false)."
            )
        if not _can_boot_agent(task):
            raise exception.InvalidParameterValue(
                err=f"Node {node.uuid}: service step(s) {names} run in the agent, but deploy interface "
                f"{node.deploy_interface} cannot boot one; use deploy interface direct."
            )
        gpu_acceptance.gate_steps(task, steps, manual=True)  # bad verify_gpus arguments: refused now
    task.process_event("service", callback=do_node_service, call_args=(task, steps))


def do_node_service(task, steps: list[dict[str, Any]]) -> None:
    """Service the node (in "servicing"): boot the agent when a step needs it, else run the steps now."""
    node = task.node
    try:
        steps = gpu_acceptance.gate_steps(task, steps, manual=True)
        ramdisk = needs_agent(steps)
        if ramdisk:
            agent_commands.clear_operation(task)
        agent_commands.update_internal(
            task, **{STEPS_KEY: steps, INDEX_KEY: 0, STEP_KEY: None, RAMDISK_KEY: ramdisk}
        )
        if ramdisk:
            agent_boot.power_off(task)
            task.driver.network.unconfigure_tenant_networks(task)
            agent_boot.boot_agent_on(task, task.driver.network.add_cleaning_network)
    except Exception as exc:  # noqa: BLE001 - any failure fails servicing with its message
        fail(task, f"Servicing of node {node.uuid} failed while preparing: {error_text(exc)}")
        return
    if ramdisk:
        task.process_event("wait")
        LOG.info("Node %s: servicing waits for the agent ramdisk", node.uuid)
        return
    continue_service(task)


def continue_service(task) -> None:
    """Run the next service steps: conductor steps now, an agent step started (wait), or finish."""
    if task.node.provision_state == states.SERVICEWAIT:
        task.process_event("resume")
    while True:
        info = agent_commands.internal(task)
        steps = info.get(STEPS_KEY) or []
        index = int(info.get(INDEX_KEY) or 0)
        if index >= len(steps):
            _finish(task)
            return
        step = steps[index]
        name = step["step"]
        agent_commands.update_internal(task, **{STEP_KEY: step})
        if name == HOLD:
            agent_commands.update_internal(task, **{INDEX_KEY: index + 1})
            task.process_event("hold")
            LOG.info("Node %s: service step %s.hold; waiting for unhold", task.node.uuid, step["interface"])
            return
        try:
            if name in POWER_STEPS:
                _power(task, POWER_STEPS[name])
                agent_commands.update_internal(task, **{INDEX_KEY: index + 1, STEP_KEY: None})
                continue
            if bmc_steps.is_conductor_step(step):
                bmc_steps.run(task, step, "service")
                agent_commands.update_internal(task, **{INDEX_KEY: index + 1, STEP_KEY: None, BMC_KEY: True})
                continue
            done = agent_commands.start_agent_command(task, name, step.get("args") or {}, "service")
        except Exception as exc:  # noqa: BLE001
            fail(
                task,
                f"Service step {step['interface']}.{name} failed on node {task.node.uuid}: {error_text(exc)}",
            )
            return
        if done is None:
            task.process_event("wait")
            return
        finish_agent_service_step(task, name, done)
        return


def _power(task, target: str) -> None:
    if target == states.REBOOT:
        agent_boot.forget_agent_token(task)
        task.update_node({"target_power_state": states.POWER_ON})
        task.driver.power.reboot(task)
        agent_boot.record_power(task)
    elif target == states.POWER_ON:
        agent_boot.power_on(task)
    else:
        agent_boot.power_off(task)


def finish_agent_service_step(task, step: str, result: dict[str, Any]) -> None:
    """An agent service step ended: go on with the next one, or fail servicing naming the error."""
    error = agent_commands.result_error(step, result)
    if error is not None:
        fail(task, f"Service step deploy.{step} failed on node {task.node.uuid}: {error}")
        gpu_acceptance.quarantine(task, step, result)
        return
    current = agent_commands.internal(task).get(STEP_KEY) or {}
    gpu_acceptance.step_passed(task, current, result)
    index = int(agent_commands.internal(task).get(INDEX_KEY) or 0) + 1
    agent_commands.update_internal(task, **{INDEX_KEY: index, STEP_KEY: None})
    continue_service(task)


def boot_instance(task) -> None:
    """Power the agent off and boot the node's instance from disk on its tenant networks."""
    agent_boot.power_off(task)
    task.driver.boot.clean_up_ramdisk(task)
    task.driver.network.remove_cleaning_network(task)
    task.driver.network.configure_tenant_networks(task)
    task.driver.boot.prepare_instance(task)
    task.driver.management.set_boot_device(task, base.DISK, persistent=True)
    agent_boot.power_on(task)


def _finish(task) -> None:
    if agent_commands.internal(task).get(RAMDISK_KEY):
        try:
            boot_instance(task)
        except Exception as exc:  # noqa: BLE001
            fail(
                task,
                f"Servicing of node {task.node.uuid} failed while booting its instance: {error_text(exc)}",
            )
            return
    if agent_commands.internal(task).get(BMC_KEY):
        bmc_steps.refresh_caches(task)  # BIOS settings and firmware versions as they are now
    agent_commands.clear_operation(task, *SERVICE_KEYS)
    task.process_event("done")
    LOG.info("Node %s serviced; now %s", task.node.uuid, task.node.provision_state)


def fail(task, message: str) -> None:
    """Move the node to "service failed" with ``message``; a booted ramdisk is powered off and removed."""
    if agent_commands.internal(task).get(RAMDISK_KEY):
        failures.fail(task, message)
        return
    LOG.error("Node %s: %s", task.node.uuid, message)
    task.refresh()
    try:
        task.process_event("fail", last_error=message)
    except exception.InvalidStateRequested:
        task.update_node({"last_error": message})


def unhold(task) -> None:
    """Release a node from "service hold": the next step runs now (no ramdisk) or on the next heartbeat."""
    if agent_commands.internal(task).get(RAMDISK_KEY):
        task.process_event("unhold")
        return
    task.process_event("unhold", callback=continue_service, call_args=(task,))


def abort(task) -> None:
    """Abort servicing: from "service wait"/"service hold" via "service failed", back to "active"."""
    node = task.node
    state = node.provision_state
    if state == states.SERVICEFAIL and node.maintenance:
        raise exception.InvalidState(
            reason=f"node {node.uuid} is in maintenance; take it out of maintenance before aborting "
            "its servicing"
        )
    message = node.last_error
    if state in (states.SERVICEWAIT, states.SERVICEHOLD):
        message = f"Servicing of node {node.uuid} was aborted by request in state {state}."
        LOG.warning("Node %s: %s", node.uuid, message)
        task.process_event("fail", last_error=message)
    task.process_event("abort", callback=_after_abort, call_args=(task,), last_error=message)


def _after_abort(task) -> None:
    problems = []
    if agent_commands.internal(task).get(RAMDISK_KEY):
        try:
            boot_instance(task)
        except Exception as exc:  # noqa: BLE001 - reported in last_error; the node stays active
            problems.append(f"booting the instance again failed: {error_text(exc)}")
    agent_commands.clear_operation(task, *SERVICE_KEYS)
    if problems:
        base_message = task.node.last_error or f"Servicing of node {task.node.uuid} was aborted."
        task.update_node({"last_error": f"{base_message} Also: {'; '.join(problems)}."})
    LOG.info("Node %s: servicing aborted; now %s", task.node.uuid, task.node.provision_state)
