"""Verify: an enrolled node's BMC is reached with its credentials before it becomes manageable."""

from __future__ import annotations

from agent.common import states
from agent.conductor import bmc_steps, failures


def start_manage(task) -> None:
    """Move a node to manageable; from enroll, verify its BMC first (in a worker thread)."""
    if task.node.provision_state != states.ENROLL:
        task.process_event("manage")
        return
    task.process_event("manage", callback=do_node_verify, call_args=(task,))


def do_node_verify(task) -> None:
    """Validate the power and management interfaces and read the power state; fail naming why."""
    try:
        task.driver.power.validate(task)
        task.driver.management.validate(task)
        power = task.driver.power.get_power_state(task)
        task.update_node({"power_state": power})
        bmc_steps.refresh_caches(task)
        task.process_event("done")
    except Exception as exc:  # noqa: BLE001 - any failure fails verification with its message
        failures.fail_flow(task, "Verifying the BMC credentials", exc)
