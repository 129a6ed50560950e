"""The agent commands of a node's current operation, and their results.

The node's agent runs one step at a time (``run_step`` over RPC, answered later by a
``step_result`` cast). What is running is kept in the node's ``driver_internal_info`` so any
conductor holding the node's lock can carry on:

    agent_command       {"command_id", "step", "kind": "deploy"|"clean", "started_at"}
    deploy_step_index   index of the next deploy step to run (see ``deployments.ordered_deploy_steps``)
    deploy_step         the deploy step running now
    agent_results       {step name: its result dict} of the agent steps finished in this operation

Every function here expects an exclusive task (``task_manager.acquire``) on the node.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from oslo_log import log as logging

from agent.common import exception
from agent.common.config import CONF

LOG = logging.getLogger(__name__)


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


def agent_client() -> Any:
    """The process-wide AgentClient client (topic kiln.agent) on the process-wide transport."""
    global _client
    with _client_lock:
        if _client is None:
            from agent.conductor.agent_client import AgentClient

            _client = AgentClient(timeout=CONF.deploy.agent_command_timeout)
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
