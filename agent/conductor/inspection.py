"""Inspection: the inspect interface finds the node's hardware (in-band through the agent, or fake)."""

from __future__ import annotations

from agent.common import states
from agent.common.utils import utcnow
from agent.conductor import failures


def start_inspect(task) -> None:
    """Validate the inspect interface and start inspecting (in a worker thread)."""
    task.driver.inspect.validate(task)
    task.update_node({"inspection_started_at": utcnow(), "inspection_finished_at": None})
    task.process_event("inspect", callback=do_node_inspect, call_args=(task,))


def do_node_inspect(task) -> None:
    """Inspect; wait for the agent when the interface says so, else finish."""
    try:
        result = task.driver.inspect.inspect_hardware(task)
        if result == states.INSPECTWAIT:
            task.process_event("wait")
            return
        task.update_node({"inspection_finished_at": utcnow()})
        task.process_event("done")
    except Exception as exc:  # noqa: BLE001
        failures.fail_flow(task, "Inspection", exc)
