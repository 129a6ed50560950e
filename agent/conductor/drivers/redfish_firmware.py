"""Firmware components over Redfish (sushy): the system's BIOS version and the BMC's firmware version
are cached as the node's ``bios`` and ``bmc`` components (Ironic's), each network adapter's
controller firmware as ``nic:<adapter Id>`` (shown only: updates of NICs are refused), and the clean step
``firmware.update`` flashes an image through the UpdateService's SimpleUpdate action.
"""

from __future__ import annotations

import time
from typing import Any

import sushy
from oslo_log import log as logging

from agent.common import exception, utils
from agent.common.config import CONF
from agent.conductor.drivers import base, redfish
from agent.db import firmware as db_firmware

LOG = logging.getLogger(__name__)

BIOS = "bios"
BMC = "bmc"
COMPONENTS = (BIOS, BMC)
#: Network adapters are shown as "nic:<Redfish adapter Id>" (Ironic's names); Kiln does not flash them.
NIC_PREFIX = "nic:"

_UPDATE_ARGS = {
    "settings": {
        "description": 'Firmware images to flash, in order: [{"component": "bios" or "bmc", "url": "http://..."}].',
        "required": True,
    }
}


def _manager(system):
    managers = system.managers
    return managers[0] if managers else None


def _nic_versions(system) -> dict[str, str]:
    """{"nic:<adapter Id>": FirmwarePackageVersion} for the network adapters of the system's chassis."""
    versions: dict[str, str] = {}
    try:
        enclosures = system.chassis or []
    except sushy.exceptions.MissingAttributeError:  # a system that names no chassis
        return versions
    for chassis in enclosures:
        try:
            adapters = chassis.network_adapters.get_members()
        except sushy.exceptions.MissingAttributeError:  # a chassis that lists no NetworkAdapters
            continue
        for adapter in adapters:
            found = [
                c.firmware_package_version for c in adapter.controllers or [] if c.firmware_package_version
            ]
            if found:
                versions[f"{NIC_PREFIX}{adapter.identity}"] = str(found[0])
    return versions


def read_versions(task) -> dict[str, str]:
    """{"bios": ..., "bmc": ..., "nic:<id>": ...} as the BMC reports them (a component it does not
    report is left out)."""
    system = redfish.get_system(task.node)
    versions = {}
    if system.bios_version:
        versions[BIOS] = str(system.bios_version)
    manager = redfish._call(task.node, "read the BMC manager", _manager, system)
    if manager is not None and manager.firmware_version:
        versions[BMC] = str(manager.firmware_version)
    versions.update(redfish._call(task.node, "read the network adapters", _nic_versions, system))
    return versions


def check_settings(node_uuid: str, settings: Any) -> list[dict[str, Any]]:
    """The firmware update settings, checked; InvalidParameterValue naming the bad entry."""
    if not isinstance(settings, list) or not settings:
        raise exception.InvalidParameterValue(
            err=f"Node {node_uuid}: firmware.update needs args.settings, "
            'a non-empty list of {"component", "url"}.'
        )
    for index, item in enumerate(settings):
        where = f"Node {node_uuid}: firmware.update settings[{index}]"
        if (
            not isinstance(item, dict)
            or not {"component", "url"} <= set(item)
            or set(item) - {"component", "url", "wait"}
        ):
            raise exception.InvalidParameterValue(
                err=f"{where} must be "
                '{"component": "bios" or "bmc", "url": <http(s) URL>} (optionally "wait").'
            )
        if item["component"] not in COMPONENTS:
            nic = str(item["component"]).startswith(NIC_PREFIX)
            raise exception.InvalidParameterValue(
                err=f"{where}: component {item['component']!r} is not one of {', '.join(COMPONENTS)}"
                + (" (Kiln shows NIC firmware but does not update it)." if nic else ".")
            )
        if not utils.is_http_url(item["url"]):
            raise exception.InvalidParameterValue(err=f"{where}: url {item['url']!r} is not an http(s) URL.")
    return settings


class RedfishFirmware(base.FirmwareInterface):
    """Firmware versions and updates through Redfish."""

    def get_properties(self) -> dict[str, str]:
        """The Redfish driver_info keys."""
        return {**redfish.REQUIRED, **redfish.OPTIONAL}

    def validate(self, task) -> None:
        """Check the node's Redfish driver_info."""
        redfish.parse_driver_info(task.node)

    def cache_firmware_components(self, task) -> None:
        """Record the versions the BMC reports now."""
        versions = read_versions(task)
        db_firmware.record_firmware_versions(task.node.id, versions)
        LOG.info("Node %s: firmware components cached: %s", task.node.uuid, versions)

    @base.clean_step(priority=0, argsinfo=_UPDATE_ARGS)
    def update(self, task, settings: list[dict[str, Any]]) -> None:
        """Flash each image in turn (SimpleUpdate) and wait until the BMC reports the new version."""
        check_settings(task.node.uuid, settings)
        for item in settings:
            self._flash(task, item)

    def _flash(self, task, item: dict[str, Any]) -> None:
        node = task.node
        component, url = item["component"], item["url"]
        before = read_versions(task).get(component)
        system = redfish.get_system(node)
        root = redfish._connections.get(redfish.parse_driver_info(node))
        service = redfish._call(node, "read the UpdateService", root.get_update_service)
        if component == BIOS:
            target = system.path
        else:
            manager = redfish._call(node, "read the BMC manager", _manager, system)
            target = manager.path if manager is not None else None
        LOG.info("Node %s: flashing %s from %s (was %s)", node.uuid, component, url, before)
        try:
            service.simple_update(url, targets=[target] if target else None)
        except (sushy.exceptions.SushyError, OSError) as exc:
            raise redfish.RedfishError(
                f"Node {node.uuid}: Redfish SimpleUpdate of {component} failed: {exc}"
            ) from None
        after = self._wait_for_change(task, component, before, item.get("wait"))
        db_firmware.record_firmware_versions(node.id, read_versions(task), flashed=(component,))
        LOG.info("Node %s: %s firmware is now %s", node.uuid, component, after)

    def _wait_for_change(self, task, component: str, before: str | None, wait: Any) -> str | None:
        timeout = int(wait) if isinstance(wait, int) and wait > 0 else CONF.redfish.power_state_change_timeout
        now = read_versions(task).get(component)
        if now != before:
            return now
        # Most BMCs stage a BIOS image until the next boot.
        task.driver.power.reboot(task)
        deadline = time.monotonic() + timeout
        while now == before and time.monotonic() < deadline:
            time.sleep(CONF.redfish.power_state_poll_interval)
            now = read_versions(task).get(component)
        if now == before:
            raise redfish.RedfishError(
                f"Node {task.node.uuid}: the BMC accepted the {component} update but still reports version "
                f"{before} after a reboot and {timeout} s."
            )
        return now
