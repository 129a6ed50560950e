"""Redfish power and management through sushy: power, boot device (once or persistent) and boot mode.

driver_info: redfish_address (required; "https://" assumed without a scheme), redfish_system_id
(the system's path, e.g. /redfish/v1/Systems/1; optional when the BMC has one system),
redfish_username, redfish_password, redfish_verify_ca (true/false or a CA bundle path).
"""

from __future__ import annotations

import collections
import threading
import urllib.parse
from typing import Any

import sushy
from oslo_log import log as logging
from oslo_utils import strutils

from agent.common import exception, secrets, states
from agent.common.config import CONF
from agent.conductor import waits
from agent.conductor.drivers import base

LOG = logging.getLogger(__name__)

REQUIRED = {"redfish_address": "URL of the BMC, e.g. https://10.0.0.5 (https:// assumed without a scheme)."}
OPTIONAL = {
    "redfish_system_id": "Path of the ComputerSystem, e.g. /redfish/v1/Systems/1; optional with one system.",
    "redfish_username": "BMC user name.",
    "redfish_password": "BMC password.",
    "redfish_verify_ca": "true (default), false, or the path of a CA bundle to verify the BMC's certificate.",
}

_BOOT_DEVICES = {
    base.PXE: sushy.BootSource.PXE,
    base.DISK: sushy.BootSource.HDD,
    base.CDROM: sushy.BootSource.CD,
    base.BIOS: sushy.BootSource.BIOS_SETUP,
}
_BOOT_DEVICES_BACK = {v: k for k, v in _BOOT_DEVICES.items()}
_BOOT_MODES = {
    base.BOOT_MODE_UEFI: sushy.BootSourceOverrideMode.UEFI,
    base.BOOT_MODE_BIOS: sushy.BootSourceOverrideMode.LEGACY,
}
_BOOT_MODES_BACK = {v: k for k, v in _BOOT_MODES.items()}
_POWER_BACK = {
    sushy.PowerState.ON: states.POWER_ON,
    sushy.PowerState.POWERING_OFF: states.POWER_ON,
    sushy.PowerState.OFF: states.POWER_OFF,
    sushy.PowerState.POWERING_ON: states.POWER_OFF,
}


class RedfishError(exception.KilnException):
    """The BMC refused or failed a Redfish operation."""

    code = 503


def parse_driver_info(node: Any) -> dict[str, Any]:
    """The node's Redfish settings, checked; errors name the node and the bad or missing key."""
    info = node.driver_info or {}
    address = info.get("redfish_address")
    if not address:
        raise exception.MissingParameterValue(
            err=f"Node {node.uuid}: driver_info is missing redfish_address (the BMC's URL, e.g. https://10.0.0.5)."
        )
    if not isinstance(address, str):
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid}: driver_info redfish_address must be a string."
        )
    if "://" not in address:
        address = "https://" + address
    parsed = urllib.parse.urlsplit(address)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid}: driver_info redfish_address {address!r} is not an http(s) URL."
        )
    system_id = info.get("redfish_system_id")
    if system_id is not None and (not isinstance(system_id, str) or not system_id.strip()):
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid}: driver_info redfish_system_id must be a path like /redfish/v1/Systems/1."
        )
    verify = info.get("redfish_verify_ca", True)
    if isinstance(verify, str):
        try:
            verify = strutils.bool_from_string(verify, strict=True)
        except ValueError:
            if not verify.startswith("/"):
                raise exception.InvalidParameterValue(
                    err=f"Node {node.uuid}: driver_info redfish_verify_ca {verify!r} is neither a boolean "
                    "nor an absolute path to a CA bundle."
                ) from None
    elif not isinstance(verify, bool):
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid}: driver_info redfish_verify_ca must be a boolean or a CA bundle path."
        )
    for key in ("redfish_username", "redfish_password"):
        if info.get(key) is not None and not isinstance(info.get(key), str):
            raise exception.InvalidParameterValue(
                err=f"Node {node.uuid}: driver_info {key} must be a string."
            )
    return {
        "address": urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, "", "", "")),
        "root_prefix": (parsed.path.rstrip("/") + "/") if parsed.path.strip("/") else "/redfish/v1/",
        "system_id": system_id,
        "username": info.get("redfish_username"),
        "password": info.get("redfish_password"),
        "verify": verify,
    }


class _Connections:
    """A small LRU of sushy clients keyed by BMC and credentials, so each call does not log in again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: collections.OrderedDict[tuple, sushy.Sushy] = collections.OrderedDict()

    @staticmethod
    def _key(params: dict[str, Any]) -> tuple:
        return (
            params["address"],
            params["root_prefix"],
            params["username"],
            params["password"],
            str(params["verify"]),
        )

    def get(self, params: dict[str, Any]) -> sushy.Sushy:
        key = self._key(params)
        with self._lock:
            conn = self._cache.get(key)
            if conn is not None:
                self._cache.move_to_end(key)
                return conn
        conn = sushy.Sushy(
            params["address"],
            username=params["username"],
            password=params["password"],
            root_prefix=params["root_prefix"],
            verify=params["verify"],
            read_timeout=CONF.redfish.connection_timeout,
            connect_timeout=CONF.redfish.connection_timeout,
            server_side_retries=CONF.redfish.connection_attempts,
            server_side_retries_delay=CONF.redfish.connection_retry_interval,
        )
        size = CONF.redfish.connection_cache_size
        if size:
            with self._lock:
                self._cache[key] = conn
                while len(self._cache) > size:
                    self._cache.popitem(last=False)
        return conn

    def forget(self, params: dict[str, Any]) -> None:
        key = self._key(params)
        with self._lock:
            self._cache.pop(key, None)


_connections = _Connections()


def get_system(node: Any):
    """The node's sushy System; RedfishError (secrets masked) when the BMC cannot be reached or read."""
    params = parse_driver_info(node)
    try:
        return _connections.get(params).get_system(params["system_id"])
    except (sushy.exceptions.SushyError, OSError) as exc:
        _connections.forget(params)
        raise RedfishError(
            f"Node {node.uuid}: cannot read Redfish system {params['system_id'] or '(the only one)'} at "
            f"{params['address']}: {secrets.mask_text(str(exc), node.driver_info)}"
        ) from None


def _call(node: Any, what: str, func, *args, **kwargs) -> Any:
    try:
        return func(*args, **kwargs)
    except (sushy.exceptions.SushyError, OSError) as exc:
        raise RedfishError(
            f"Node {node.uuid}: Redfish {what} failed: {secrets.mask_text(str(exc), node.driver_info)}"
        ) from None


def _allowed_devices(node: Any, system) -> list[str]:
    """Our boot devices the system allows as override targets (all of them when it does not say)."""
    allowed = _call(node, "read allowed boot sources", system.get_allowed_system_boot_source_values)
    if not allowed:
        return list(_BOOT_DEVICES)
    return [device for device, source in _BOOT_DEVICES.items() if source in allowed]


class RedfishPower(base.PowerInterface):
    """Power through the Redfish ComputerSystem.Reset action."""

    def get_properties(self) -> dict[str, str]:
        """The redfish_* driver_info keys."""
        return {**REQUIRED, **OPTIONAL}

    def validate(self, task) -> None:
        """Check driver_info (no BMC call)."""
        parse_driver_info(task.node)

    @waits.bmc_call
    def get_power_state(self, task) -> str:
        """The system's power state (transitional states count as where they come from)."""
        system = get_system(task.node)
        return _POWER_BACK.get(system.power_state, states.ERROR)

    def _wait_for(self, task, system, wanted: str, timeout: int | None) -> None:
        timeout = timeout or CONF.redfish.power_state_change_timeout

        def read() -> str:
            _call(task.node, "power state read", system.refresh, force=True)
            return _POWER_BACK.get(system.power_state, states.ERROR)

        reached, current = base.poll_power_state(
            read, wanted, timeout, CONF.redfish.power_state_poll_interval
        )
        if reached:
            return
        raise exception.PowerStateFailure(
            f'Node {task.node.uuid}: Redfish power state did not become "{wanted}" within {timeout} s '
            f'(the BMC reports "{current}" / {system.power_state}).'
        )

    @waits.bmc_call
    def set_power_state(self, task, power_state: str, timeout: int | None = None) -> None:
        """Power on/off (hard or soft) or reboot, and wait until the BMC reports the new state."""
        system = get_system(task.node)
        current = _POWER_BACK.get(system.power_state, states.ERROR)
        if power_state == states.POWER_ON:
            if current != states.POWER_ON:
                _call(task.node, "power on", system.reset_system, sushy.ResetType.ON)
            wanted = states.POWER_ON
        elif power_state in (states.POWER_OFF, states.SOFT_POWER_OFF):
            if current != states.POWER_OFF:
                reset = (
                    sushy.ResetType.FORCE_OFF
                    if power_state == states.POWER_OFF
                    else sushy.ResetType.GRACEFUL_SHUTDOWN
                )
                _call(task.node, power_state, system.reset_system, reset)
            wanted = states.POWER_OFF
        elif power_state in (states.REBOOT, states.SOFT_REBOOT):
            if current == states.POWER_OFF:
                _call(task.node, "power on", system.reset_system, sushy.ResetType.ON)
            else:
                reset = (
                    sushy.ResetType.FORCE_RESTART
                    if power_state == states.REBOOT
                    else sushy.ResetType.GRACEFUL_RESTART
                )
                _call(task.node, power_state, system.reset_system, reset)
            wanted = states.POWER_ON
        else:
            raise exception.InvalidParameterValue(
                err=f'Node {task.node.uuid}: Redfish cannot set power state "{power_state}"; '
                f"use one of {', '.join(self.get_supported_power_states(task))}."
            )
        LOG.info("Node %s: Redfish %s requested", task.node.uuid, power_state)
        self._wait_for(task, system, wanted, timeout)

    def reboot(self, task, timeout: int | None = None) -> None:
        """Hard reboot (power on when off), waiting until it is on."""
        self.set_power_state(task, states.REBOOT, timeout)

    def get_supported_power_states(self, task) -> list[str]:
        """Hard and soft power off and reboot, and power on."""
        return [states.POWER_ON, states.POWER_OFF, states.SOFT_POWER_OFF, states.REBOOT, states.SOFT_REBOOT]


class RedfishManagement(base.ManagementInterface):
    """Boot source override (device, once or continuous) and firmware boot mode over Redfish."""

    def get_properties(self) -> dict[str, str]:
        """The redfish_* driver_info keys."""
        return {**REQUIRED, **OPTIONAL}

    def validate(self, task) -> None:
        """Check driver_info (no BMC call)."""
        parse_driver_info(task.node)

    def get_node_health(self, task) -> str | None:
        """The System's Status.Health (the rollup when the BMC gives only that); None when absent."""
        status = get_system(task.node).status
        health = (status.health or status.health_rollup) if status is not None else None
        return health.value if health is not None else None

    def get_supported_boot_devices(self, task) -> list[str]:
        """Those of pxe, disk, cdrom, bios that the system lists as allowed override targets."""
        return _allowed_devices(task.node, get_system(task.node))

    @waits.bmc_call
    def set_boot_device(self, task, device: str, persistent: bool = False) -> None:
        """Boot from ``device`` next time (or always), keeping the node's current boot mode."""
        if device not in _BOOT_DEVICES:
            raise exception.InvalidParameterValue(
                err=f'Node {task.node.uuid}: Redfish boot device "{device}" is not supported; '
                f"use one of {', '.join(_BOOT_DEVICES)}."
            )
        system = get_system(task.node)
        allowed = _allowed_devices(task.node, system)
        if device not in allowed:
            raise exception.InvalidParameterValue(
                err=f'Node {task.node.uuid}: the BMC does not offer boot device "{device}"; '
                f"it offers {', '.join(allowed) or 'none'}."
            )
        enabled = (
            sushy.BootSourceOverrideEnabled.CONTINUOUS if persistent else sushy.BootSourceOverrideEnabled.ONCE
        )
        _call(
            task.node,
            "set boot device",
            system.set_system_boot_options,
            _BOOT_DEVICES[device],
            enabled=enabled,
        )
        LOG.info(
            "Node %s: Redfish boot device %s (%s)",
            task.node.uuid,
            device,
            "persistent" if persistent else "once",
        )

    @waits.bmc_call
    def get_boot_device(self, task) -> dict[str, Any]:
        """{"boot_device": pxe|disk|cdrom|bios|None, "persistent": bool|None} from the override settings."""
        system = get_system(task.node)
        enabled = system.boot.enabled
        return {
            "boot_device": _BOOT_DEVICES_BACK.get(system.boot.target),
            "persistent": None if enabled is None else enabled == sushy.BootSourceOverrideEnabled.CONTINUOUS,
        }

    def get_supported_boot_modes(self, task) -> list[str]:
        """uefi and bios."""
        return list(_BOOT_MODES)

    @waits.bmc_call
    def set_boot_mode(self, task, mode: str) -> None:
        """Switch the firmware's boot mode; recorded in driver_internal_info["boot_mode"] too."""
        base.check_boot_mode(task.node, mode, _BOOT_MODES)
        system = get_system(task.node)
        _call(task.node, "set boot mode", system.set_system_boot_options, mode=_BOOT_MODES[mode])
        base.record_boot_mode(task, mode)

    @waits.bmc_call
    def get_boot_mode(self, task) -> str | None:
        """The firmware's boot mode as the BMC reports it."""
        return _BOOT_MODES_BACK.get(get_system(task.node).boot.mode)

    def attach_virtual_media(self, task, device_type: str, image_url: str, download_source: str) -> None:
        """Insert ``image_url`` into the BMC's virtual ``device_type`` (the BMC downloads it)."""
        from agent.conductor.drivers import redfish_vmedia

        redfish_vmedia.attach(task.node, device_type, image_url)

    def detach_virtual_media(self, task, device_types: list[str] | None) -> None:
        """Eject the virtual media of ``device_types`` (all when None)."""
        from agent.conductor.drivers import redfish_vmedia

        redfish_vmedia.detach(task.node, device_types)
