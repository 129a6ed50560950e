"""Adoption: a node already running its workload becomes active without being deployed."""

from __future__ import annotations

from agent.conductor import failures


def start_adopt(task) -> None:
    """Start adopting a manageable node (in a worker thread)."""
    task.process_event("adopt", callback=do_node_adopt, call_args=(task,))


def do_node_adopt(task) -> None:
    """Validate power and deploy, let the deploy interface take the node over, and make it active."""
    try:
        task.driver.power.validate(task)
        task.driver.deploy.validate(task)
        task.driver.deploy.take_over(task)
        task.process_event("done")
    except Exception as exc:  # noqa: BLE001
        failures.fail_flow(task, "Adoption", exc)
