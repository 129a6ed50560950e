"""Deployment: start it, run the deploy interface's steps (in the conductor or the agent), tear down.

Deploy steps run in Ironic's order (highest priority first). An agent step makes the node wait
("wait call-back") until its ``step_result`` arrives; progress lives in driver_internal_info
(see ``agent_commands``). Every function here expects an exclusive task on the node.
"""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging

from agent.common import exception, states
from agent.common.steps import check_steps
from agent.common.utils import error_text
from agent.conductor import agent_boot, agent_commands, cleaning, failures
from agent.conductor.agent_commands import STEP_INDEX_KEY, STEP_KEY
from agent.db import api as db_api
from agent.db import deploy_templates

LOG = logging.getLogger(__name__)

# instance_info key of the user's deploy steps for the deployment under way.
USER_STEPS_KEY = "deploy_steps"
# instance_info key of the steps of the deploy templates the instance's traits selected.
TEMPLATE_STEPS_KEY = "deploy_template_steps"
# Steps without which nothing is deployed: the user may move them, never switch them off.
CORE_STEPS = ("deploy",)


def start_deploy(task, event: str, configdrive: Any = None, deploy_steps: Any = None) -> None:
    """Validate and start a deploy or rebuild (``event``); the work runs in a worker thread.

    ``deploy_steps`` (the API's user steps) must name deploy steps the node's interfaces offer;
    they change those steps' priority and arguments for this deployment, as in Ironic.
    """
    steps = check_steps(deploy_steps, "deploy_steps", task.node.uuid)
    task.driver.power.validate(task)
    task.driver.deploy.validate(task)
    if steps:
        check_user_steps(task, steps)
    templates = template_steps(task.node)
    if templates:
        check_user_steps(task, templates, "deploy template step")
    info = dict(task.node.instance_info or {})
    if configdrive is not None:
        info["configdrive"] = configdrive
    info.pop(USER_STEPS_KEY, None)
    info.pop(TEMPLATE_STEPS_KEY, None)
    if steps:
        info[USER_STEPS_KEY] = steps
    if templates:
        info[TEMPLATE_STEPS_KEY] = templates
    task.update_node({"instance_info": info})
    task.process_event(event, callback=do_node_deploy, call_args=(task,))


def template_steps(node: Any) -> list[dict[str, Any]]:
    """The steps of the deploy templates named by the instance's traits that the node has (Ironic's
    rule: instance_info traits, each of which must be a node trait), in template name order."""
    wanted = [t for t in (node.instance_info or {}).get("traits") or [] if t in set(node.traits)]
    steps: list[dict[str, Any]] = []
    for template in deploy_templates.templates_for_traits(wanted):
        for step in template.steps or []:
            steps.append({k: step[k] for k in ("interface", "step", "args", "priority")})
    return steps


def check_user_steps(task, steps: list[dict[str, Any]], label: str = "deploy_steps") -> None:
    """Each user deploy step names an offered step, with a priority and only arguments it takes."""
    node = task.node.uuid
    offered = {(s["interface"], s["step"]): s for s in task.driver.deploy.get_deploy_steps(task)}
    known = ", ".join(sorted(f"{i}.{n}" for i, n in offered))
    for index, step in enumerate(steps):
        where = f"Node {node}: {label}[{index}]"
        found = offered.get((step["interface"], step["step"]))
        if found is None:
            raise exception.InvalidParameterValue(
                err=f"{where} {step['interface']}.{step['step']} is not a deploy step of this node; "
                f"its deploy steps are: {known}."
            )
        if "priority" not in step:
            raise exception.InvalidParameterValue(err=f'{where} needs a "priority" (0 disables the step).')
        if step["priority"] < 0:
            raise exception.InvalidParameterValue(err=f"{where}.priority must be 0 or more.")
        if step["step"] in CORE_STEPS and step["priority"] == 0:
            raise exception.InvalidParameterValue(
                err=f"{where}: the core step deploy.{step['step']} cannot be disabled."
            )
        unknown = sorted(set(step.get("args") or {}) - set(found.get("argsinfo") or {}))
        if unknown:
            raise exception.InvalidParameterValue(
                err=f"{where} deploy.{step['step']} takes no argument(s) {', '.join(unknown)}; "
                f"it takes: {', '.join(sorted(found.get('argsinfo') or {})) or 'none'}."
            )


def do_node_deploy(task) -> None:
    """Prepare and start the deployment; finish it when the deploy interface needs no agent."""
    try:
        deploy = task.driver.deploy
        deploy.prepare(task)
        result = deploy.deploy(task)
        if result == states.DEPLOYWAIT:
            task.process_event("wait")
            return
        task.driver.boot.prepare_instance(task)
        task.driver.power.set_power_state(task, states.POWER_ON)
        task.update_node({"power_state": task.driver.power.get_power_state(task)})
        task.process_event("done")
    except Exception as exc:  # noqa: BLE001
        failures.fail_flow(task, "Deployment", exc)


def ordered_deploy_steps(task) -> list[dict[str, Any]]:
    """The deploy steps to run, highest priority first (Ironic's order).

    The deploy interface's steps, with the priority and arguments of the user's deploy_steps
    (instance_info) laid over them; a step whose priority ends at 0 does not run.
    """
    info = task.node.instance_info or {}
    # Template steps first, the user's laid over them (Ironic: the user's deploy_steps win).
    given_steps = [*(info.get(TEMPLATE_STEPS_KEY) or []), *(info.get(USER_STEPS_KEY) or [])]
    user = {(s["interface"], s["step"]): s for s in given_steps}
    steps = []
    for step in task.driver.deploy.get_deploy_steps(task):
        given = user.get((step["interface"], step["step"]))
        if given is not None:
            step = {**step, "priority": given["priority"], "args": dict(given.get("args") or {})}
        if step["priority"] > 0:
            steps.append(step)
    return sorted(steps, key=lambda s: -s["priority"])


def continue_deploy(task) -> None:
    """Run the node's remaining deploy steps until one waits for the agent, then wait, or finish.

    Called in "wait call-back" when the agent is up and nothing is pending, and after an agent
    step ended. Any error fails the deployment, naming the step.
    """
    if task.node.provision_state == states.DEPLOYWAIT:
        task.process_event("resume")
    steps = ordered_deploy_steps(task)
    index = int(agent_commands.internal(task).get(STEP_INDEX_KEY) or 0)
    while index < len(steps):
        step = steps[index]
        agent_commands.update_internal(task, **{STEP_KEY: step, STEP_INDEX_KEY: index})
        LOG.info("Node %s: deploy step %s (priority %s)", task.node.uuid, step["step"], step["priority"])
        try:
            result = task.driver.deploy.execute_deploy_step(task, step)
        except Exception as exc:  # noqa: BLE001 - any failure fails the deployment
            failures.fail(
                task, f"Deploy step {step['step']} failed on node {task.node.uuid}: {error_text(exc)}"
            )
            return
        if result == states.DEPLOYWAIT:
            task.process_event("wait")
            return
        # The next step's record (or clear_operation below) saves the new index in the same write.
        index += 1
    agent_commands.clear_operation(task)
    task.process_event("done")
    LOG.info("Node %s deployed", task.node.uuid)


def finish_agent_deploy_step(task, step: str, result: dict[str, Any]) -> None:
    """An agent step of the current deploy step ended: record it and go on, or fail the deployment."""
    error = agent_commands.result_error(step, result)
    if error is not None:
        failures.fail(task, f"Deploy step {step} failed on node {task.node.uuid}: {error}")
        return
    agent_commands.record_result(task, step, result)
    if task.node.provision_state == states.DEPLOYWAIT:
        task.process_event("resume")
    current = agent_commands.internal(task).get(STEP_KEY) or {}
    follow_up = getattr(task.driver.deploy, "after_agent_step", None)
    if follow_up is not None:
        try:
            waiting = follow_up(task, current, step)
        except Exception as exc:  # noqa: BLE001
            failures.fail(
                task,
                f"Deploy step {current.get('step', step)} failed on node {task.node.uuid}: {error_text(exc)}",
            )
            return
        if waiting == states.DEPLOYWAIT:
            task.process_event("wait")
            return
    agent_commands.update_internal(
        task, **{STEP_INDEX_KEY: int(agent_commands.internal(task).get(STEP_INDEX_KEY) or 0) + 1}
    )
    continue_deploy(task)


def start_tear_down(task) -> None:
    """Start undeploying an active node; cleaning follows in the same worker."""
    task.process_event("delete", callback=do_node_tear_down, call_args=(task,))


def do_node_tear_down(task) -> None:
    """Tear the instance down, free its allocations, power off, then clean the node."""
    try:
        task.driver.deploy.tear_down(task)
        task.driver.deploy.clean_up(task)
        task.driver.boot.clean_up_instance(task)
        agent_boot.forget_agent_token(task)
        task.driver.power.set_power_state(task, states.POWER_OFF)
        node = task.node
        for alloc in db_api.list_allocations(filters={"node_id": node.id}):
            db_api.destroy_allocation(alloc.uuid)
        task.update_node(
            {
                "instance_info": {},
                "instance_uuid": None,
                "power_state": task.driver.power.get_power_state(task),
            }
        )
        task.process_event("clean")
    except Exception as exc:  # noqa: BLE001
        failures.fail_flow(task, "Tear down", exc)
        return
    cleaning.do_node_clean(task, None)
