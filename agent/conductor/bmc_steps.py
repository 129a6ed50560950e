"""Clean and service steps the conductor runs itself through the node's BMC (bios, firmware and raid
interfaces), and the refresh of the node's cached BIOS settings and firmware components.

Cleaning (agent.conductor.cleaning) hands such steps here instead of to the agent: a manual clean
made only of them never boots the ramdisk.
"""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging

from agent.common import exception
from agent.common.utils import error_text
from agent.conductor.drivers import redfish_bios, redfish_firmware
from agent.db import bios as db_bios

LOG = logging.getLogger(__name__)

INTERFACES = ("bios", "firmware", "raid")


def _check_bios_settings(task, args: dict[str, Any]) -> None:
    # Against the settings last read from the BMC (names, read-only, allowed values), when there are any.
    cached = {row.name: row.as_dict() for row in db_bios.list_bios_settings(task.node.id)}
    redfish_bios.check_settings(task.node.uuid, args.get("settings"), cached)


def _check_firmware_settings(task, args: dict[str, Any]) -> None:
    redfish_firmware.check_settings(task.node.uuid, args.get("settings"))


# Argument checks made when the clean is requested, without the BMC: (interface, step) -> check.
_ARG_CHECKS = {
    ("bios", "apply_configuration"): _check_bios_settings,
    ("firmware", "update"): _check_firmware_settings,
}


def is_conductor_step(step: dict[str, Any]) -> bool:
    """Whether ``step`` belongs to an interface whose steps run in the conductor."""
    return step.get("interface") in INTERFACES


def manual_step(step: dict[str, Any]) -> dict[str, Any]:
    """A requested manual step in the form cleaning keeps (priority 0)."""
    return {
        "step": step["step"],
        "priority": 0,
        "interface": step["interface"],
        "args": dict(step.get("args") or {}),
    }


def check(task, steps: list[dict[str, Any]], field: str = "clean_steps") -> None:
    """Refuse, before cleaning or servicing starts, a conductor step the node's interface lacks or
    cannot run, or whose arguments are missing, unknown or malformed; the message names the node,
    the step and where it was asked for (``field``)."""
    node = task.node
    for index, step in enumerate(steps):
        if not is_conductor_step(step):
            continue
        iface_name = step["interface"]
        where = f"Node {node.uuid}: {field}[{index}] {iface_name}.{step['step']}"
        iface = getattr(task.driver, iface_name)
        offered = {s["step"]: s for s in iface.get_clean_steps(task)}
        found = offered.get(step["step"])
        if found is None:
            names = ", ".join(f"{iface_name}.{n}" for n in sorted(offered)) or "none"
            impl = task.driver.interface_names.get(iface_name)
            raise exception.InvalidParameterValue(
                err=f"{where} is not offered by {iface_name}_interface {impl}; its steps: {names}."
            )
        if found["requires_ramdisk"]:
            raise exception.InvalidParameterValue(
                err=f"{where} runs in the agent ramdisk, and Kiln's agent does not offer it; "
                f"use {iface_name}_interface redfish on a BMC that supports it."
            )
        args = step.get("args") or {}
        unknown = sorted(set(args) - set(found["argsinfo"]))
        missing = sorted(n for n, info in found["argsinfo"].items() if info.get("required") and n not in args)
        if unknown or missing:
            problems = ([f"unknown: {', '.join(unknown)}"] if unknown else []) + (
                [f"missing: {', '.join(missing)}"] if missing else []
            )
            raise exception.InvalidParameterValue(
                err=f"{where} has bad arguments ({'; '.join(problems)}); it takes: "
                f"{', '.join(sorted(found['argsinfo'])) or 'none'}."
            )
        extra_check = _ARG_CHECKS.get((iface_name, step["step"]))
        if extra_check is not None:
            extra_check(task, args)


def run(task, step: dict[str, Any], what: str = "clean") -> None:
    """Run one conductor step through the node's interface (raises what the step raises)."""
    LOG.info(
        "Node %s: running %s step %s.%s in the conductor",
        task.node.uuid,
        what,
        step["interface"],
        step["step"],
    )
    getattr(task.driver, step["interface"]).execute_clean_step(task, step)


def refresh_caches(task) -> None:
    """Re-read the node's BIOS settings and firmware components from its BMC, where its interfaces can.

    A failure is logged, never raised: a stale cache must not fail the flow that refreshes it.
    """
    for what, iface, method in (
        ("BIOS settings", task.driver.bios, "cache_bios_settings"),
        ("firmware components", task.driver.firmware, "cache_firmware_components"),
    ):
        try:
            getattr(iface, method)(task)
        except exception.UnsupportedDriverExtension:
            continue
        except Exception as exc:  # noqa: BLE001 - logged with the node and what could not be read
            LOG.warning("Node %s: could not refresh its %s: %s", task.node.uuid, what, error_text(exc))
