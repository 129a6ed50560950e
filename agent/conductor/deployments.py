"""Conductor-side orchestration of work the agent does: commands, deploy steps, failures, timeouts.

The node's agent runs one step at a time (``run_step`` over RPC, answered later by a
``step_result`` cast). What is running is kept in the node's ``driver_internal_info`` so any
conductor holding the node's lock can carry on:

    agent_command       {"command_id", "step", "kind": "deploy"|"clean", "started_at"}
    deploy_step_index   index of the next deploy step to run (see ``ordered_deploy_steps``)
    deploy_step         the deploy step running now
    agent_results       {step name: its result dict} of the agent steps finished in this operation

Every function here expects an exclusive task (``task_manager.acquire``) on the node.
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

from oslo_log import log as logging

from agent.common import exception, states
from agent.common.config import CONF
from agent.common.opts import conductor as conductor_opts
from agent.common.opts import deploy as deploy_opts
from agent.common.utils import error_text, utcnow
from agent.conductor.drivers import base
from agent.db import api as db_api

LOG = logging.getLogger(__name__)

conductor_opts.register(CONF)
deploy_opts.register(CONF)

# driver_internal_info keys this module owns; all are removed when an operation ends.
COMMAND_KEY = "agent_command"
STEP_INDEX_KEY = "deploy_step_index"
STEP_KEY = "deploy_step"
RESULTS_KEY = "agent_results"
OPERATION_KEYS = (COMMAND_KEY, STEP_INDEX_KEY, STEP_KEY, RESULTS_KEY)

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"

_client_lock = threading.Lock()
_client: Any = None


# --- agent commands --------------------------------------------------------------------------


def agent_client() -> Any:
    """The process-wide AgentAPI client (topic kiln.agent) on the process-wide transport."""
    global _client
    with _client_lock:
        if _client is None:
            from agent.common.agent_api import AgentAPI

            _client = AgentAPI(timeout=CONF.deploy.agent_command_timeout)
        return _client


def set_agent_client(client: Any) -> None:
    """Use ``client`` for agent commands (None: build the default one on next use)."""
    global _client
    with _client_lock:
        _client = client


def agent_token(task) -> str:
    """The node's agent token, as the agent endpoint that called the hook verified it."""
    token = getattr(task, "agent_token", None)
    if not token:
        raise exception.InvalidState(
            reason=f"node {task.node.uuid} has no agent token at hand: agent commands can only be sent "
            "while handling a message from the node's agent (heartbeat or step_result)"
        )
    return token


def internal(task) -> dict[str, Any]:
    """A copy of the node's driver_internal_info."""
    return dict(task.node.driver_internal_info or {})


def update_internal(task, **values: Any) -> dict[str, Any]:
    """Set (or, for a None value, remove) keys of the node's driver_internal_info and save it."""
    info = internal(task)
    for key, value in values.items():
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
    task.update_node({"driver_internal_info": info})
    return info


def clear_operation(task, *extra_keys: str) -> None:
    """Forget every trace of the agent operation in driver_internal_info."""
    update_internal(task, **dict.fromkeys(OPERATION_KEYS + extra_keys))


def pending_command(task) -> dict[str, Any] | None:
    """The agent command the node is waiting for, or None."""
    return internal(task).get(COMMAND_KEY)


def start_agent_command(task, step: str, args: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """Ask the agent to run ``step``; return its result when it finished at once, else None (running).

    The command is recorded as the node's pending one, so the step_result that ends it can be matched.
    """
    answer = agent_client().run_step({}, task.node.uuid, agent_token(task), step, args)
    answer = answer if isinstance(answer, dict) else {}
    status = answer.get("status")
    if status in (SUCCEEDED, FAILED):
        LOG.info("Node %s: agent step %s finished at once (%s)", task.node.uuid, step, status)
        return answer
    if status is None and "command_id" not in answer:
        # An agent that runs steps synchronously answers with the step's own result.
        return {"command_id": None, "status": SUCCEEDED, "result": answer, "error": None}
    command = {
        "command_id": answer.get("command_id"),
        "step": step,
        "kind": kind,
        "started_at": time.time(),
    }
    update_internal(task, **{COMMAND_KEY: command})
    LOG.info("Node %s: agent runs %s step %s (command %s)", task.node.uuid, kind, step, command["command_id"])
    return None


def accept_result(task, step: str, result: dict[str, Any]) -> dict[str, Any] | None:
    """Match a step_result with the pending command; return the pending command, or None to ignore it."""
    command = pending_command(task)
    if command is None:
        LOG.warning(
            "Node %s: step_result for %s ignored: no agent command is pending (state %s)",
            task.node.uuid,
            step,
            task.node.provision_state,
        )
        return None
    wanted = command.get("command_id")
    got = (result or {}).get("command_id")
    if command.get("step") != step or (wanted and got and wanted != got):
        LOG.warning(
            "Node %s: step_result for %s (command %s) ignored: waiting for %s (command %s)",
            task.node.uuid,
            step,
            got,
            command.get("step"),
            wanted,
        )
        return None
    update_internal(task, **{COMMAND_KEY: None})
    return command


def result_error(step: str, result: dict[str, Any]) -> str | None:
    """The error of a finished step result, or None when it succeeded."""
    status = (result or {}).get("status")
    if status == SUCCEEDED:
        return None
    error = (result or {}).get("error") or f"the agent reported status {status!r} and no error"
    return str(error)


def record_result(task, step: str, result: dict[str, Any]) -> None:
    """Keep the result dict of a finished agent step for the steps that follow."""
    results = dict(internal(task).get(RESULTS_KEY) or {})
    results[step] = (result or {}).get("result") or {}
    update_internal(task, **{RESULTS_KEY: results})


def step_results(task) -> dict[str, dict[str, Any]]:
    """Results of the agent steps finished in this operation, by step name."""
    return dict(internal(task).get(RESULTS_KEY) or {})


# --- booting into and out of the agent ramdisk -------------------------------------------------


def ramdisk_params(task) -> dict[str, Any]:
    """Extra kernel parameters for the agent (the boot interface adds the node UUID and the conductor URL)."""
    return {}


def record_power(task) -> None:
    """Save the node's power state as the BMC reports it (unknown when the BMC cannot be read)."""
    try:
        power = task.driver.power.get_power_state(task)
    except Exception as exc:  # noqa: BLE001 - a failed read only leaves the state unknown
        LOG.warning("Node %s: reading the power state failed: %s", task.node.uuid, exc)
        power = None
    task.update_node({"power_state": power, "target_power_state": None})


def power_off(task) -> None:
    """Power the node off (no-op when it already is) and record it."""
    power = task.driver.power
    if power.get_power_state(task) != states.POWER_OFF:
        task.update_node({"target_power_state": states.POWER_OFF})
        power.set_power_state(task, states.POWER_OFF)
    record_power(task)


def power_on(task) -> None:
    """Power the node on (no-op when it already is) and record it."""
    power = task.driver.power
    if power.get_power_state(task) != states.POWER_ON:
        task.update_node({"target_power_state": states.POWER_ON})
        power.set_power_state(task, states.POWER_ON)
    record_power(task)


def boot_agent(task) -> None:
    """PXE-boot the node into the agent: ramdisk config, one-time PXE boot, power cycle."""
    task.driver.boot.prepare_ramdisk(task, ramdisk_params(task))
    task.driver.management.set_boot_device(task, base.PXE, persistent=False)
    power = task.driver.power
    task.update_node({"target_power_state": states.POWER_ON})
    if power.get_power_state(task) == states.POWER_ON:
        power.reboot(task)
    else:
        power.set_power_state(task, states.POWER_ON)
    record_power(task)


def undo_agent_boot(task, power_down: bool = True) -> list[str]:
    """Best effort: power off and remove the ramdisk boot config; return what failed (for last_error)."""
    problems: list[str] = []
    if power_down:
        try:
            power_off(task)
        except Exception as exc:  # noqa: BLE001 - collect, the caller reports it
            problems.append(f"powering off failed: {exc}")
            record_power(task)
    try:
        task.driver.boot.clean_up_ramdisk(task)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"removing the ramdisk boot config failed: {exc}")
    return problems


# --- failures -----------------------------------------------------------------------------------


def tidy_up(task, power_down: bool | None = None) -> list[str]:
    """Undo what an agent operation set up (power, ramdisk boot config, networks, progress); return problems.

    The node is powered off unless ``power_down`` is false (default: [deploy]power_off_after_deploy_failure).
    """
    if power_down is None:
        power_down = CONF.deploy.power_off_after_deploy_failure
    problems = undo_agent_boot(task, power_down=power_down)
    try:
        task.driver.network.remove_provisioning_network(task)
        task.driver.network.remove_cleaning_network(task)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"removing the provisioning network failed: {exc}")
    clear_operation(task, "clean_steps", "clean_step_index", "clean_manual", "clean_step")
    return problems


def _with_problems(message: str, problems: list[str]) -> str:
    return message if not problems else f"{message} Also while cleaning up: {'; '.join(problems)}."


def fail(task, message: str, event: str = "fail", power_down: bool | None = None) -> None:
    """Tear down what the operation set up, then move the node along ``event`` with ``message``.

    The node is powered off (unless [deploy]power_off_after_deploy_failure is false) and its
    ramdisk boot config removed, so nothing is left half-done; problems doing so are added to
    last_error.
    """
    LOG.error("Node %s: %s", task.node.uuid, message)
    text = _with_problems(message, tidy_up(task, power_down))
    task.refresh()
    try:
        task.process_event(event, last_error=text)
    except exception.InvalidStateRequested:
        LOG.warning(
            "Node %s: cannot process %s in state %s", task.node.uuid, event, task.node.provision_state
        )
        task.update_node({"last_error": text})


_ABORTED = {
    states.CLEANWAIT: "Cleaning",
    states.CLEANHOLD: "Cleaning",
    states.INSPECTWAIT: "Inspection",
    states.DEPLOYHOLD: "Deployment",
    states.SERVICEWAIT: "Servicing",
    states.SERVICEHOLD: "Servicing",
}


def abort(task) -> None:
    """Abort the node's current operation now ("abort" event) and tidy up in the background."""
    state = task.node.provision_state
    what = _ABORTED.get(state, "The operation")
    message = f"{what} of node {task.node.uuid} was aborted by request in state {state}."
    LOG.warning("Node %s: %s", task.node.uuid, message)
    task.process_event("abort", callback=_tidy_after_abort, call_args=(task, message), last_error=message)


def _tidy_after_abort(task, message: str) -> None:
    problems = tidy_up(task)
    if problems:
        task.update_node({"last_error": _with_problems(message, problems)})


# --- deploy steps ---------------------------------------------------------------------------------


def ordered_deploy_steps(task) -> list[dict[str, Any]]:
    """The deploy interface's enabled steps (priority > 0), highest priority first (Ironic's order)."""
    steps = [s for s in task.driver.deploy.get_deploy_steps(task) if s["priority"] > 0]
    return sorted(steps, key=lambda s: -s["priority"])


def continue_deploy(task) -> None:
    """Run the node's remaining deploy steps until one waits for the agent, then wait, or finish.

    Called in "wait call-back" when the agent is up and nothing is pending, and after an agent
    step ended. Any error fails the deployment, naming the step.
    """
    if task.node.provision_state == states.DEPLOYWAIT:
        task.process_event("resume")
    steps = ordered_deploy_steps(task)
    index = int(internal(task).get(STEP_INDEX_KEY) or 0)
    while index < len(steps):
        step = steps[index]
        update_internal(task, **{STEP_KEY: step, STEP_INDEX_KEY: index})
        LOG.info("Node %s: deploy step %s (priority %s)", task.node.uuid, step["step"], step["priority"])
        try:
            result = task.driver.deploy.execute_deploy_step(task, step)
        except Exception as exc:  # noqa: BLE001 - any failure fails the deployment
            fail(task, f"Deploy step {step['step']} failed on node {task.node.uuid}: {error_text(exc)}")
            return
        if result == states.DEPLOYWAIT:
            task.process_event("wait")
            return
        index += 1
        update_internal(task, **{STEP_INDEX_KEY: index})
    clear_operation(task)
    task.process_event("done")
    LOG.info("Node %s deployed", task.node.uuid)


def finish_agent_deploy_step(task, step: str, result: dict[str, Any]) -> None:
    """An agent step of the current deploy step ended: record it and go on, or fail the deployment."""
    error = result_error(step, result)
    if error is not None:
        fail(task, f"Deploy step {step} failed on node {task.node.uuid}: {error}")
        return
    record_result(task, step, result)
    if task.node.provision_state == states.DEPLOYWAIT:
        task.process_event("resume")
    current = internal(task).get(STEP_KEY) or {}
    follow_up = getattr(task.driver.deploy, "after_agent_step", None)
    if follow_up is not None:
        try:
            waiting = follow_up(task, current, step)
        except Exception as exc:  # noqa: BLE001
            fail(
                task,
                f"Deploy step {current.get('step', step)} failed on node {task.node.uuid}: {error_text(exc)}",
            )
            return
        if waiting == states.DEPLOYWAIT:
            task.process_event("wait")
            return
    update_internal(task, **{STEP_INDEX_KEY: int(internal(task).get(STEP_INDEX_KEY) or 0) + 1})
    continue_deploy(task)


# --- timeouts -------------------------------------------------------------------------------------


def _timeout_for(state: str) -> int:
    if state == states.DEPLOYWAIT:
        return CONF.conductor.deploy_callback_timeout
    if state == states.CLEANWAIT:
        return CONF.deploy.clean_callback_timeout
    return CONF.deploy.inspect_wait_timeout


def _as_utc(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value


def last_sign_of_life(node: Any) -> datetime.datetime | None:
    """When the node last moved state or its agent last heartbeated, whichever is later."""
    times = [t for t in (_as_utc(node.provision_updated_at), _as_utc(node.last_heartbeat_at)) if t]
    return max(times) if times else None


def check_callback_timeouts(
    host: str | None = None, now: datetime.datetime | None = None, ring: Any = None
) -> list[str]:
    """Fail nodes whose agent has been silent too long in a wait state; return their UUIDs.

    deploy: [conductor]deploy_callback_timeout; clean: [deploy]clean_callback_timeout; inspect:
    [deploy]inspect_wait_timeout. With ``host``, only the nodes the hash ring (``ring``, default the
    process-wide one) maps to that conductor are checked. Meant for the conductor's periodic tasks.
    """
    from agent.conductor import task_manager

    now = now or utcnow()
    nodes = db_api.list_nodes(
        filters={"provision_state_in": list(states.AGENT_WAIT_STATES), "reserved": False}
    )
    if host is not None and nodes:
        if ring is None:
            from agent.conductor import hash_ring

            ring = hash_ring.default_manager()
        nodes = ring.nodes_for_conductor(host, nodes)
    failed: list[str] = []
    for node in nodes:
        limit = _timeout_for(node.provision_state)
        seen = last_sign_of_life(node)
        if not limit or seen is None or (now - seen).total_seconds() <= limit:
            continue
        try:
            with task_manager.acquire(
                {},
                node.uuid,
                purpose="callback timeout",
                retry_attempts=1,
                **({"host": host} if host else {}),
            ) as task:
                state = task.node.provision_state
                seen = last_sign_of_life(task.node)
                if (
                    state not in states.AGENT_WAIT_STATES
                    or seen is None
                    or (now - seen).total_seconds() <= limit
                ):
                    continue
                command = pending_command(task)
                doing = f" while the agent ran {command['step']}" if command else ""
                fail(
                    task,
                    f"Timeout reached while waiting for a callback from the agent of node {task.node.uuid} "
                    f"in state {state}{doing}: no heartbeat for more than {limit} s "
                    f"({_timeout_option(state)}). Check that the node boots the agent over PXE and that "
                    "the agent reaches the message bus.",
                )
                failed.append(task.node.uuid)
        except (exception.NodeLocked, exception.NodeNotFound):
            continue
    return failed


def _timeout_option(state: str) -> str:
    return {
        states.DEPLOYWAIT: "[conductor]deploy_callback_timeout",
        states.CLEANWAIT: "[deploy]clean_callback_timeout",
    }.get(state, "[deploy]inspect_wait_timeout")
