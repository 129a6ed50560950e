"""BIOS settings over Redfish (sushy): read them and the attribute registry into the node's cache,
apply new values (clean step ``bios.apply_configuration``) and reset to defaults (``factory_reset``).

A BMC that stages new values until the next boot (Bios/Settings with pending attributes) gets a
reboot through the node's power interface; the step ends when the BMC reports the values applied.
"""

from __future__ import annotations

import time
from typing import Any

import sushy
from oslo_log import log as logging

from agent.common import exception
from agent.common.config import CONF
from agent.conductor.drivers import base, redfish
from agent.db import bios as db_bios

LOG = logging.getLogger(__name__)

_SETTINGS_ARGS = {
    "settings": {
        "description": 'BIOS settings to apply: [{"name": "ProcTurboMode", "value": "Disabled"}, ...].',
        "required": True,
    }
}


def _bios(task):
    system = redfish.get_system(task.node)
    try:
        return system.bios
    except (sushy.exceptions.SushyError, OSError) as exc:
        raise exception.UnsupportedDriverExtension(
            driver=task.node.driver, extension=f"BIOS settings (the BMC offers no Bios resource: {exc})"
        ) from None


def _registry(task, bios) -> dict[str, Any]:
    """Registry attributes by name; empty when the BMC publishes no attribute registry."""
    try:
        registry = bios.get_attribute_registry()
    except (sushy.exceptions.SushyError, OSError) as exc:
        LOG.info("Node %s: no BIOS attribute registry (%s)", task.node.uuid, exc)
        return {}
    entries = getattr(getattr(registry, "registry_entries", None), "attributes", None) or []
    return {entry.name: entry for entry in entries}


def _allowable(entry: Any) -> list[str] | None:
    values = getattr(entry, "allowable_values", None)
    if not values:
        return None
    return [
        v.get("ValueName") or v.get("ValueDisplayName") if isinstance(v, dict) else str(v) for v in values
    ]


def read_settings(task) -> list[dict[str, Any]]:
    """The BMC's BIOS attributes with the registry's facts, as bios_settings rows."""
    bios = _bios(task)
    attributes = redfish._call(task.node, "read BIOS attributes", lambda: dict(bios.attributes or {}))
    registry = _registry(task, bios)
    settings = []
    for name, value in sorted(attributes.items()):
        setting: dict[str, Any] = {"name": name, "value": value}
        entry = registry.get(name)
        if entry is not None:
            setting.update(
                attribute_type=entry.attribute_type,
                allowable_values=_allowable(entry),
                lower_bound=entry.lower_bound,
                max_length=entry.max_length,
                min_length=entry.min_length,
                read_only=entry.read_only,
                reset_required=entry.reset_required,
                unique=entry.unique,
                upper_bound=entry.upper_bound,
            )
        settings.append(setting)
    return settings


def check_settings(node_uuid: str, settings: Any, current: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``settings`` as {name: value}; InvalidParameterValue naming the bad entry and why."""
    if not isinstance(settings, list) or not settings:
        raise exception.InvalidParameterValue(
            err=f"Node {node_uuid}: bios.apply_configuration needs args.settings, "
            'a non-empty list of {"name", "value"}.'
        )
    wanted: dict[str, Any] = {}
    for index, item in enumerate(settings):
        where = f"Node {node_uuid}: bios.apply_configuration settings[{index}]"
        if not isinstance(item, dict) or set(item) != {"name", "value"} or not isinstance(item["name"], str):
            raise exception.InvalidParameterValue(
                err=f'{where} must be {{"name": <string>, "value": <value>}}.'
            )
        name, value = item["name"], item["value"]
        known = current.get(name)
        if current and known is None:
            raise exception.InvalidParameterValue(err=f"{where}: the BMC has no BIOS setting {name!r}.")
        if known is not None and known.get("read_only"):
            raise exception.InvalidParameterValue(err=f"{where}: BIOS setting {name!r} is read-only.")
        allowed = (known or {}).get("allowable_values")
        if allowed and str(value) not in allowed:
            raise exception.InvalidParameterValue(
                err=f"{where}: {value!r} is not an allowed value of {name!r}; allowed: {', '.join(allowed)}."
            )
        wanted[name] = value
    return wanted


class RedfishBIOS(base.BiosInterface):
    """BIOS settings through the Redfish Bios resource of the node's ComputerSystem."""

    def get_properties(self) -> dict[str, str]:
        """The Redfish driver_info keys."""
        return {**redfish.REQUIRED, **redfish.OPTIONAL}

    def validate(self, task) -> None:
        """Check the node's Redfish driver_info."""
        redfish.parse_driver_info(task.node)

    def cache_bios_settings(self, task) -> None:
        """Read the BMC's settings and make them the node's."""
        changes = db_bios.replace_bios_settings(task.node.id, read_settings(task))
        LOG.info(
            "Node %s: BIOS settings cached (%d new, %d changed, %d gone)",
            task.node.uuid,
            len(changes["created"]),
            len(changes["updated"]),
            len(changes["deleted"]),
        )

    @base.clean_step(priority=0, argsinfo=_SETTINGS_ARGS)
    def apply_configuration(self, task, settings: list[dict[str, Any]]) -> None:
        """Set BIOS attributes; reboot when the BMC stages them; cache the settings the BMC then reports."""
        current = {s["name"]: s for s in read_settings(task)}
        wanted = check_settings(task.node.uuid, settings, current)
        bios = _bios(task)
        redfish._call(task.node, "set BIOS attributes", bios.set_attributes, wanted)
        self._until_applied(task, wanted)
        self.cache_bios_settings(task)

    @base.clean_step(priority=0)
    def factory_reset(self, task) -> None:
        """Reset the BIOS to its defaults (Bios.ResetBios) and cache the settings that result."""
        bios = _bios(task)
        redfish._call(task.node, "reset the BIOS", bios.reset_bios)
        self.cache_bios_settings(task)

    def _until_applied(self, task, wanted: dict[str, Any]) -> None:
        missing = self._not_applied(task, wanted)
        if not missing:
            return
        LOG.info("Node %s: BIOS settings %s are pending; rebooting to apply them", task.node.uuid, missing)
        task.driver.power.reboot(task)
        deadline = time.monotonic() + CONF.redfish.power_state_change_timeout
        while missing and time.monotonic() < deadline:
            time.sleep(CONF.redfish.power_state_poll_interval)
            missing = self._not_applied(task, wanted)
        if missing:
            raise redfish.RedfishError(
                f"Node {task.node.uuid}: the BMC did not apply BIOS settings {', '.join(sorted(missing))} "
                f"within {CONF.redfish.power_state_change_timeout} s of a reboot."
            )

    def _not_applied(self, task, wanted: dict[str, Any]) -> list[str]:
        now = {s["name"]: s["value"] for s in read_settings(task)}
        return [name for name, value in wanted.items() if str(now.get(name)) != str(value)]
