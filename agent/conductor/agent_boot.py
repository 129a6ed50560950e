"""Booting a node into and out of the agent ramdisk, and its power around that.

Every function here expects an exclusive task (``task_manager.acquire``) on the node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oslo_log import log as logging

from agent.common import states
from agent.conductor.drivers import base

LOG = logging.getLogger(__name__)


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
    _power_to(task, states.POWER_OFF)


def power_on(task) -> None:
    """Power the node on (no-op when it already is) and record it."""
    _power_to(task, states.POWER_ON)


def forget_agent_token(task) -> None:
    """Clear the node's agent token: the ramdisk that booted next looks up and gets a new one (Ironic's rule).

    Called before every power-off and reboot, so a token never outlives the boot it was issued to.
    """
    if task.node.agent_token_hash:
        task.update_node({"agent_token_hash": None})
        LOG.info("Node %s: agent token cleared (the node powers off or reboots)", task.node.uuid)


def _power_to(task, target: str) -> None:
    if target == states.POWER_OFF:
        forget_agent_token(task)
    power = task.driver.power
    if power.get_power_state(task) != target:
        task.update_node({"target_power_state": target})
        power.set_power_state(task, target)
    record_power(task)


def boot_agent(task) -> None:
    """Boot the node into the agent: ramdisk config, one-time boot from the boot interface's device
    (PXE, or the virtual CD of redfish-virtual-media), power cycle."""
    task.driver.boot.prepare_ramdisk(task, ramdisk_params(task))
    device = getattr(task.driver.boot, "ramdisk_boot_device", base.PXE)
    task.driver.management.set_boot_device(task, device, persistent=False)
    forget_agent_token(task)
    power = task.driver.power
    task.update_node({"target_power_state": states.POWER_ON})
    if power.get_power_state(task) == states.POWER_ON:
        power.reboot(task)
    else:
        power.set_power_state(task, states.POWER_ON)
    record_power(task)


def boot_agent_on(task, add_network: Callable[[Any], None]) -> None:
    """Put the node on a network (``add_network(task)``) and boot the agent; undo both on failure."""
    try:
        add_network(task)
        boot_agent(task)
    except Exception:
        undo_agent_boot(task)
        raise


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
