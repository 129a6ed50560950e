"""When an operation fails or is aborted: tidy up what it set up, then move the node on.

Every function here expects an exclusive task (``task_manager.acquire``) on the node.
"""

from __future__ import annotations

from oslo_log import log as logging

from agent.common import exception, states
from agent.common.config import CONF
from agent.common.utils import error_text
from agent.conductor import agent_boot, agent_commands

LOG = logging.getLogger(__name__)


def tidy_up(task, power_down: bool | None = None) -> list[str]:
    """Undo what an agent operation set up (power, ramdisk boot config, networks, progress); return problems.

    The node is powered off unless ``power_down`` is false (default: [deploy]power_off_after_deploy_failure).
    """
    if power_down is None:
        power_down = CONF.deploy.power_off_after_deploy_failure
    problems = agent_boot.undo_agent_boot(task, power_down=power_down)
    try:
        task.driver.network.remove_provisioning_network(task)
        task.driver.network.remove_cleaning_network(task)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"removing the provisioning network failed: {exc}")
    agent_commands.clear_operation(task, "clean_steps", "clean_step_index", "clean_manual", "clean_step")
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
    states.DEPLOYWAIT: "Deployment",
    states.DEPLOYHOLD: "Deployment",
    states.SERVICEWAIT: "Servicing",
    states.SERVICEHOLD: "Servicing",
    states.RESCUEWAIT: "Rescue",
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


def fail_flow(task, what: str, exc: BaseException) -> None:
    """A flow that set nothing up failed: move the node along "fail" with ``what`` and the error."""
    msg = f"{what} failed on node {task.node.uuid}: {error_text(exc)}"
    LOG.error(msg)
    task.refresh()
    try:
        task.process_event("fail", last_error=msg)
    except exception.InvalidStateRequested:
        task.update_node({"last_error": msg})
