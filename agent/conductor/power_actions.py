"""Power changes the API asks for: validated under the node's lock, carried out in a worker thread."""

from __future__ import annotations

from oslo_log import log as logging

from agent.common import exception, states
from agent.common.utils import error_text
from agent.conductor import agent_boot

LOG = logging.getLogger(__name__)


def stable_power(target: str) -> str:
    """The power state a power target ends in (soft power off ends off, any reboot ends on)."""
    if target in (states.SOFT_POWER_OFF, states.POWER_OFF):
        return states.POWER_OFF
    return states.POWER_ON


def start_power_change(task, target: str, timeout: int | None = None) -> None:
    """Check ``target`` against the power interface, record it and change power after the lock's work."""
    supported = task.driver.power.get_supported_power_states(task)
    if target not in supported:
        raise exception.InvalidParameterValue(
            err=f'Node {task.node.uuid}: power state "{target}" is not supported by its power '
            f"interface; use one of {', '.join(supported)}."
        )
    task.driver.power.validate(task)
    task.update_node({"target_power_state": stable_power(target)})
    task.spawn_after(do_power_change, task, target, timeout)


def do_power_change(task, target: str, timeout: int | None) -> None:
    """Change the node's power; on failure keep the error in last_error."""
    power = task.driver.power
    if target != states.POWER_ON:  # off or reboot: whatever agent runs now is gone after it
        agent_boot.forget_agent_token(task)
    try:
        if target == states.REBOOT:
            power.reboot(task, timeout=timeout)
        else:
            power.set_power_state(task, target, timeout=timeout)
        task.update_node(
            {"power_state": power.get_power_state(task), "target_power_state": None, "last_error": None}
        )
    except Exception as exc:  # noqa: BLE001
        msg = f"Failed to change power state of node {task.node.uuid} to {target}: {error_text(exc)}"
        LOG.error(msg)
        task.update_node({"target_power_state": None, "last_error": msg})
