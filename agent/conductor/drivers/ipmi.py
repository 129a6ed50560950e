"""IPMI power and management through pyghmi: chassis power and the boot device (once/persistent, UEFI flag).

driver_info: ipmi_address (required), ipmi_port (default 623), ipmi_username, ipmi_password,
ipmi_cipher_suite (3: SHA-1, or 17: SHA-256, pyghmi's first choice; virtualbmc and older BMCs need 3).
IPMI cannot switch the firmware's boot mode; set_boot_mode records it, and the boot-device request
carries the matching UEFI flag.
"""

from __future__ import annotations

import struct
import threading
from typing import Any

from oslo_log import log as logging
from pyghmi import exceptions as pyghmi_exc
from pyghmi.ipmi import command as ipmi_command
from pyghmi.ipmi.private import session as ipmi_session

from agent.common import exception, secrets, states
from agent.common.config import CONF
from agent.conductor.drivers import base, boot_files

LOG = logging.getLogger(__name__)

REQUIRED = {"ipmi_address": "IP address or host name of the BMC."}
OPTIONAL = {
    "ipmi_port": "UDP port of the BMC (default 623).",
    "ipmi_username": "BMC user name (default: none).",
    "ipmi_password": "BMC password (default: empty).",
    "ipmi_cipher_suite": "IPMI 2.0 cipher suite: 17 (SHA-256, the default) or 3 (SHA-1).",
}
CIPHER_SUITES = (3, 17)

_BOOT_DEVICES = {
    base.PXE: "network",
    base.DISK: "hd",
    base.CDROM: "optical",
    base.BIOS: "setup",
    base.SAFE: "safe",
}
_BOOT_DEVICES_BACK = {v: k for k, v in _BOOT_DEVICES.items()}
_POWER_BACK = {"on": states.POWER_ON, "off": states.POWER_OFF}


class IPMIError(exception.KilnException):
    """The BMC refused or failed an IPMI operation."""

    code = 503


def parse_driver_info(node: Any) -> dict[str, Any]:
    """The node's IPMI settings, checked; errors name the node and the bad or missing key."""
    info = node.driver_info or {}
    address = info.get("ipmi_address")
    if not address or not isinstance(address, str):
        raise exception.MissingParameterValue(
            err=f"Node {node.uuid}: driver_info is missing ipmi_address (the BMC's IP address or host name)."
        )
    port = info.get("ipmi_port", 623)
    try:
        port = int(port)
    except (TypeError, ValueError):
        port = -1
    if not 1 <= port <= 65535:
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid}: driver_info ipmi_port {info.get('ipmi_port')!r} is not a port (1-65535)."
        )
    suite = info.get("ipmi_cipher_suite", 17)
    try:
        suite = int(suite)
    except (TypeError, ValueError):
        suite = -1
    if suite not in CIPHER_SUITES:
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid}: driver_info ipmi_cipher_suite {info.get('ipmi_cipher_suite')!r} is not "
            "supported: use 17 (SHA-256) or 3 (SHA-1)."
        )
    for key in ("ipmi_username", "ipmi_password"):
        if info.get(key) is not None and not isinstance(info.get(key), str):
            raise exception.InvalidParameterValue(
                err=f"Node {node.uuid}: driver_info {key} must be a string."
            )
    return {
        "bmc": address,
        "port": port,
        "userid": info.get("ipmi_username") or "",
        "password": info.get("ipmi_password") or "",
        "cipher_suite": suite,
    }


class _Sha1Session(ipmi_session.Session):
    """A pyghmi session that proposes cipher suite 3 (RAKP-HMAC-SHA1) from the start.

    pyghmi proposes suite 17 and falls back only when the BMC refuses it; BMCs that accept the
    proposal and then answer RAKP2 with SHA-1 anyway (virtualbmc) make its login fail.
    """

    def _initsession(self) -> None:
        super()._initsession()
        self.attemptedhash = 1


if ipmi_session.Session.socketchecking is None:  # one lock for both classes' socket sharing
    ipmi_session.Session.socketchecking = threading.Lock()


class _Sha1Command(ipmi_command.Command):
    """pyghmi's Command over a :class:`_Sha1Session`.

    Command's own __init__ makes its session itself (a network one, or with no BMC the local
    /dev/ipmi0): this sets the same attributes around a session of ours.
    """

    def __init__(self, bmc: str, userid: str, password: str, port: int) -> None:
        self.onlogon = None
        self.bmc = bmc
        self._sdrcachedir = self._sdr = self._oem = self._netchannel = self._ipv6support = None
        self._oemknown = False
        self.certverify = None
        self.kwargs = {}
        self.ipmi_session = _Sha1Session(bmc=bmc, userid=userid, password=password, port=port)


def _connect(params: dict[str, Any]) -> ipmi_command.Command:
    """A logged-in pyghmi Command for the BMC in ``params`` with its cipher suite."""
    kind = _Sha1Command if params["cipher_suite"] == 3 else ipmi_command.Command
    try:
        return kind(
            bmc=params["bmc"], userid=params["userid"], password=params["password"], port=params["port"]
        )
    except struct.error as exc:
        # pyghmi's RAKP2 check got a SHA-1 HMAC (20 B) where it proposed SHA-256 (32 B)
        raise pyghmi_exc.IpmiException(
            f"the BMC answered the SHA-256 login (cipher suite 17) with SHA-1 ({exc}); "
            "set driver_info ipmi_cipher_suite=3"
        ) from None


_guard = threading.Lock()
_commands: dict[tuple, ipmi_command.Command] = {}
_locks: dict[tuple, threading.Lock] = {}


def _forget_login(key: tuple) -> None:
    """Drop pyghmi's record of a login in progress for ``key``.

    pyghmi leaves it behind when a BMC made it fall back from the SHA-256 to the SHA-1 cipher suite, or
    when the login failed; the next Command() for the same BMC would then wait on it forever.
    """
    initting = getattr(ipmi_session.Session, "initting_sessions", None)
    if isinstance(initting, dict):
        initting.pop((key[0], key[1], key[2], key[3], None), None)


def _run(node: Any, what: str, func_name: str, *args, **kwargs) -> Any:
    """Call a pyghmi Command method on the node's BMC (one reused session per BMC); IPMIError on failure."""
    params = parse_driver_info(node)
    key = (params["bmc"], params["userid"], params["password"], params["port"], params["cipher_suite"])
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        try:
            cmd = _commands.get(key)
            if cmd is None:
                try:
                    cmd = _connect(params)
                finally:
                    _forget_login(key)
                _commands[key] = cmd
            result = getattr(cmd, func_name)(*args, **kwargs)
        except (pyghmi_exc.PyghmiException, OSError) as exc:
            _commands.pop(key, None)
            raise IPMIError(
                f"Node {node.uuid}: IPMI {what} at {params['bmc']}:{params['port']} failed: "
                f"{secrets.mask_text(str(exc), node.driver_info)}"
            ) from None
    if isinstance(result, dict) and result.get("error"):
        raise IPMIError(
            f"Node {node.uuid}: IPMI {what} at {params['bmc']}:{params['port']} failed: "
            f"{secrets.mask_text(str(result['error']), node.driver_info)}"
        )
    return result


class IPMIPower(base.PowerInterface):
    """Chassis power control over IPMI."""

    def get_properties(self) -> dict[str, str]:
        """The ipmi_* driver_info keys."""
        return {**REQUIRED, **OPTIONAL}

    def validate(self, task) -> None:
        """Check driver_info (no BMC call)."""
        parse_driver_info(task.node)

    def get_power_state(self, task) -> str:
        """The chassis power state."""
        return _POWER_BACK.get(_run(task.node, "power status", "get_power").get("powerstate"), states.ERROR)

    def _wait_for(self, task, wanted: str, timeout: int | None) -> None:
        timeout = timeout or CONF.ipmi.power_state_change_timeout
        reached, current = base.poll_power_state(
            lambda: self.get_power_state(task), wanted, timeout, CONF.ipmi.power_state_poll_interval
        )
        if reached:
            return
        raise exception.PowerStateFailure(
            f'Node {task.node.uuid}: IPMI power state did not become "{wanted}" within {timeout} s '
            f'(the BMC reports "{current}").'
        )

    def set_power_state(self, task, power_state: str, timeout: int | None = None) -> None:
        """Power on, off, soft off or reboot, and wait until the BMC reports the new state."""
        requests = {
            states.POWER_ON: ("on", states.POWER_ON),
            states.POWER_OFF: ("off", states.POWER_OFF),
            states.SOFT_POWER_OFF: ("shutdown", states.POWER_OFF),
            states.REBOOT: ("boot", states.POWER_ON),
        }
        if power_state not in requests:
            raise exception.InvalidParameterValue(
                err=f'Node {task.node.uuid}: IPMI cannot set power state "{power_state}"; '
                f"use one of {', '.join(self.get_supported_power_states(task))}."
            )
        request, wanted = requests[power_state]
        _run(task.node, power_state, "set_power", request, wait=False)
        LOG.info("Node %s: IPMI %s requested", task.node.uuid, power_state)
        self._wait_for(task, wanted, timeout)

    def reboot(self, task, timeout: int | None = None) -> None:
        """Hard reset (power on when off), waiting until it is on."""
        self.set_power_state(task, states.REBOOT, timeout)

    def get_supported_power_states(self, task) -> list[str]:
        """Power on, off, soft off and reboot."""
        return [states.POWER_ON, states.POWER_OFF, states.SOFT_POWER_OFF, states.REBOOT]


class IPMIManagement(base.ManagementInterface):
    """Boot device over IPMI 'set system boot options'."""

    def get_properties(self) -> dict[str, str]:
        """The ipmi_* driver_info keys."""
        return {**REQUIRED, **OPTIONAL}

    def validate(self, task) -> None:
        """Check driver_info (no BMC call)."""
        parse_driver_info(task.node)

    def get_supported_boot_devices(self, task) -> list[str]:
        """pxe, disk, cdrom, bios, safe."""
        return list(_BOOT_DEVICES)

    def set_boot_device(self, task, device: str, persistent: bool = False) -> None:
        """Boot from ``device`` next time (or always), with the UEFI flag when the node boots UEFI."""
        if device not in _BOOT_DEVICES:
            raise exception.InvalidParameterValue(
                err=f'Node {task.node.uuid}: IPMI boot device "{device}" is not supported; '
                f"use one of {', '.join(_BOOT_DEVICES)}."
            )
        uefi = boot_files.boot_mode(task.node) == base.BOOT_MODE_UEFI
        _run(
            task.node,
            "set boot device",
            "set_bootdev",
            _BOOT_DEVICES[device],
            persist=bool(persistent),
            uefiboot=uefi,
        )
        LOG.info(
            "Node %s: IPMI boot device %s (%s)",
            task.node.uuid,
            device,
            "persistent" if persistent else "once",
        )

    def get_boot_device(self, task) -> dict[str, Any]:
        """{"boot_device": ..., "persistent": bool}; boot_device None when no override is set."""
        result = _run(task.node, "get boot device", "get_bootdev")
        return {
            "boot_device": _BOOT_DEVICES_BACK.get(result.get("bootdev")),
            "persistent": result.get("persistent"),
        }

    def get_supported_boot_modes(self, task) -> list[str]:
        """uefi and bios (recorded; sent as the UEFI flag with each boot-device request)."""
        return list(base.BOOT_MODES)

    def set_boot_mode(self, task, mode: str) -> None:
        """Record the node's boot mode in driver_internal_info["boot_mode"]."""
        base.check_boot_mode(task.node, mode)
        base.record_boot_mode(task, mode)

    def get_boot_mode(self, task) -> str | None:
        """The recorded (or default) boot mode."""
        return boot_files.boot_mode(task.node)
