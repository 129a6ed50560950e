"""Switch ports through networking-generic-switch's device drivers, found from LLDP.

Switches are declared as networking-generic-switch declares them, one ``[genericswitch:NAME]``
section each (``device_type``, ``ip``, ``username``, ``key_file`` or ``password``,
``ngs_mac_address``, ``ngs_port_default_vlan``, ...). A node port's ``local_link_connection``
names its switch by ``switch_info`` (the section's NAME) or by ``switch_id`` (LLDP's chassis id,
matched with ``ngs_mac_address``) and its switch port by ``port_id``.

Every change goes through the vendor driver (``plug_port_to_network``, ``delete_port`` and their
bond forms), so every vendor networking-generic-switch supports works. A port taken off a network
goes to the switch's ``ngs_port_default_vlan`` (a parking VLAN), never to "no VLAN", which on some
switches (Open vSwitch) would make it a trunk of every VLAN. Errors name the switch and the port.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import uuid
from typing import Any

from oslo_log import log as logging

from agent.common import exception
from agent.common.macs import normalize_mac
from agent.conductor.drivers.network import declared

LOG = logging.getLogger(__name__)

SECTION = "genericswitch:"
VLAN_KEY = "switch_vlan"
# Output lines that mean the switch refused a command, for drivers that check nothing themselves
# (netmiko_ovs_linux has no error patterns): ovs-vsctl's own errors and the usual CLI markers.
_REFUSED = re.compile(r"^(ovs-vsctl: .*|% ?(Invalid|Error|Incomplete).*|.*\b[Ee]rror: .*)$", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class SwitchPort:
    """One cable: a node port (``what`` names it) on port ``port`` of switch ``switch``."""

    switch: str
    port: str
    what: str
    bond: bool = False


def switches() -> dict[str, dict[str, str]]:
    """The declared switches: {NAME: the section's options}."""
    return {name: values for name, (values, _path) in declared.read_sections(SECTION).items()}


def _mac_or_none(value: Any) -> str | None:
    try:
        return normalize_mac(str(value))
    except exception.InvalidParameterValue:
        return None


def find_switch(llc: dict, what: str) -> str:
    """The NAME of the switch ``llc`` (a local_link_connection) names; a clear error when none matches."""
    declared_switches = switches()
    info = llc.get("switch_info")
    if info and info in declared_switches:
        return info
    chassis = _mac_or_none(llc.get("switch_id"))
    for name, values in declared_switches.items():
        if chassis and _mac_or_none(values.get("ngs_mac_address")) == chassis:
            return name
    raise exception.InvalidParameterValue(
        err=f"{what}: no declared switch matches its local_link_connection (switch_info "
        f"{info!r}, switch_id {llc.get('switch_id')!r}); declare it in a [genericswitch:NAME] section "
        "with ngs_mac_address set to the switch's LLDP chassis id."
    )


def switch_port(port: Any, bond: bool = False) -> SwitchPort:
    """Where node port ``port`` is cabled; InvalidParameterValue when its LLDP facts do not say."""
    what = f"Port {port.uuid} ({port.address})"
    llc = port.local_link_connection or {}
    if not llc.get("port_id"):
        raise exception.InvalidParameterValue(
            err=f"{what} has no local_link_connection port_id; inspect the node (LLDP) or set it."
        )
    name = find_switch(llc, what)
    if not switches()[name].get("ngs_port_default_vlan"):
        raise exception.InvalidParameterValue(
            err=f"Switch {name} has no ngs_port_default_vlan: a port taken off a network would carry "
            "no VLAN (on Open vSwitch, every VLAN); set it to an unused parking VLAN."
        )
    return SwitchPort(name, llc["port_id"], what, bond)


# One driver object per switch and configuration, so ngs_ssh_reuse_connection can keep its SSH
# sessions open between moves; an edited section makes a new one.
_DEVICES: dict[tuple[str, tuple], Any] = {}
_DEVICES_LOCK = threading.Lock()


def _device(name: str) -> Any:
    from networking_generic_switch import devices  # heavy (neutron-lib): only when switches are used

    config = switches()[name]
    key = (name, tuple(sorted(config.items())))
    with _DEVICES_LOCK:
        if key not in _DEVICES:
            _DEVICES[key] = devices.device_manager(dict(config), name)
        return _DEVICES[key]


def _run(sp: SwitchPort, action: str, call) -> None:
    try:
        output = call(_device(sp.switch))
    except exception.KilnException:
        raise
    except Exception as exc:  # noqa: BLE001 - every driver error becomes one naming switch and port
        raise exception.SwitchError(
            switch=sp.switch, port=sp.port, error=f"{action} failed: {_why(exc)}"
        ) from exc
    refused = _REFUSED.search(output or "") if isinstance(output, str) else None
    if refused:
        raise exception.SwitchError(
            switch=sp.switch, port=sp.port, error=f"{action} was refused: {refused.group(0).strip()}"
        )


def _why(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "NetmikoConnectError" in type(exc).__name__ or "connect" in text.lower():
        return f"cannot reach the switch ({text})"
    return text


def plug(sp: SwitchPort, vlan: int, network: str) -> None:
    """Put switch port ``sp`` on VLAN ``vlan`` (access mode), creating the VLAN on the switch first."""
    LOG.info("Switch %s port %s (%s): VLAN %s (%s)", sp.switch, sp.port, sp.what, vlan, network)

    def call(device):
        # The driver names VLANs from a network UUID: a stable one derived from the network's name.
        device.add_network(vlan, str(uuid.uuid5(uuid.NAMESPACE_URL, f"kiln-network:{network}")))
        if sp.bond:
            return device.plug_bond_to_network(sp.port, vlan)
        return device.plug_port_to_network(sp.port, vlan)

    _run(sp, f"moving {sp.what} to VLAN {vlan} ({network})", call)


def park(sp: SwitchPort, current_vlan: int | None) -> None:
    """Take switch port ``sp`` off its VLAN; it lands on the switch's ngs_port_default_vlan."""
    LOG.info(
        "Switch %s port %s (%s): off VLAN %s, to the parking VLAN", sp.switch, sp.port, sp.what, current_vlan
    )
    parking = int(switches()[sp.switch]["ngs_port_default_vlan"])
    vlan = current_vlan or parking

    def call(device):
        if sp.bond:
            return device.unplug_bond_from_network(sp.port, vlan, default_vlan=parking)
        return device.delete_port(sp.port, vlan, default_vlan=parking)

    _run(sp, f"taking {sp.what} off VLAN {vlan}", call)
