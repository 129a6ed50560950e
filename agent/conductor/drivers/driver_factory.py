"""Loads hardware types and interfaces through stevedore and composes them per node, as Ironic does.

Entry points: ``kiln.hardware_types`` and ``kiln.hardware.interfaces.<type>``. Only the names in
``[conductor]enabled_hardware_types`` / ``enabled_<type>_interfaces`` are loaded; a node may use an
interface only if it is both enabled here and supported by its hardware type.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stevedore import named

from agent.common import exception
from agent.common.config import CONF
from agent.conductor.drivers import base
from agent.conductor.drivers.hardware_type import AbstractHardwareType

HARDWARE_TYPE_NAMESPACE = "kiln.hardware_types"
INTERFACE_NAMESPACE = "kiln.hardware.interfaces."

_lock = threading.Lock()
_hardware_types: tuple[tuple[str, ...], dict[str, AbstractHardwareType]] | None = None
_interfaces: dict[str, tuple[tuple[str, ...], dict[str, base.BaseInterface]]] = {}


@dataclass
class ComposedDriver:
    """The interfaces one node uses, by type, plus its hardware type."""

    name: str
    hardware_type: AbstractHardwareType
    bios: base.BiosInterface
    boot: base.BootInterface
    deploy: base.DeployInterface
    firmware: base.FirmwareInterface
    inspect: base.InspectInterface
    management: base.ManagementInterface
    network: base.NetworkInterface
    power: base.PowerInterface
    raid: base.RAIDInterface
    interface_names: dict[str, str] = field(default_factory=dict)
    """The implementation name of each interface, e.g. {"power": "fake", ...}."""


def reset() -> None:
    """Forget the loaded extensions so the next call reloads them from the current options."""
    global _hardware_types
    with _lock:
        _hardware_types = None
        _interfaces.clear()


def _load(namespace: str, names: list[str], what: str) -> dict[str, Any]:
    missing: list[str] = []
    failed: list[str] = []

    def on_missing(names_missing) -> None:
        missing.extend(sorted(names_missing))

    def on_failure(_manager, entrypoint, err) -> None:
        failed.append(f"{entrypoint.name} ({err})")

    manager = named.NamedExtensionManager(
        namespace,
        names=list(names),
        invoke_on_load=True,
        name_order=True,
        on_missing_entrypoints_callback=on_missing,
        on_load_failure_callback=on_failure,
    )
    if missing or failed:
        problems = "; ".join(
            ([f"not installed: {', '.join(missing)}"] if missing else [])
            + ([f"failed to load: {', '.join(failed)}"] if failed else [])
        )
        raise exception.DriverNotFound(
            f"Enabled {what} could not be loaded ({problems}); entry points live in {namespace}: "
            "check [conductor] options and that the kiln package is installed."
        )
    return {ext.name: ext.obj for ext in manager}


def hardware_types() -> dict[str, AbstractHardwareType]:
    """The enabled hardware types, by name, loaded once."""
    global _hardware_types
    enabled = tuple(CONF.conductor.enabled_hardware_types)
    with _lock:
        # Keyed by the enabled list, so a changed option (a reload, another service in the
        # same process) is honoured instead of serving what an earlier list loaded.
        if _hardware_types is None or _hardware_types[0] != enabled:
            _hardware_types = (enabled, _load(HARDWARE_TYPE_NAMESPACE, list(enabled), "hardware types"))
        return dict(_hardware_types[1])


def interfaces(interface_type: str) -> dict[str, base.BaseInterface]:
    """The enabled implementations of ``interface_type``, by name, loaded once."""
    if interface_type not in base.INTERFACE_CLASSES:
        raise exception.InvalidParameterValue(
            err=f'Unknown interface type "{interface_type}"; known: {", ".join(base.INTERFACE_TYPES)}.'
        )
    enabled = tuple(getattr(CONF.conductor, f"enabled_{interface_type}_interfaces"))
    with _lock:
        cached = _interfaces.get(interface_type)
        if cached is None or cached[0] != enabled:
            loaded = _load(
                INTERFACE_NAMESPACE + interface_type, list(enabled), f"{interface_type} interfaces"
            )
            expected = base.INTERFACE_CLASSES[interface_type]
            for name, obj in loaded.items():
                if not isinstance(obj, expected):
                    raise exception.DriverNotFound(
                        f'Entry point "{name}" in {INTERFACE_NAMESPACE + interface_type} is a '
                        f"{type(obj).__name__}, not a {expected.__name__}."
                    )
            _interfaces[interface_type] = cached = (enabled, loaded)
        return dict(cached[1])


def get_hardware_type(name: str, node: str | None = None) -> AbstractHardwareType:
    """The enabled hardware type ``name``; DriverNotFound naming the node and the enabled ones."""
    types = hardware_types()
    if name not in types:
        where = f"Node {node}: " if node else ""
        raise exception.DriverNotFound(
            f'{where}hardware type "{name}" is not enabled on this conductor; '
            f"enabled: {', '.join(sorted(types)) or 'none'} ([conductor]enabled_hardware_types)."
        )
    return types[name]


def _valid_choices(hw_type: AbstractHardwareType, interface_type: str) -> list[str]:
    enabled = getattr(CONF.conductor, f"enabled_{interface_type}_interfaces")
    return [n for n in hw_type.supported_interfaces(interface_type) if n in enabled]


def default_interface(hw_type: AbstractHardwareType, interface_type: str, driver_name: str, node=None) -> str:
    """The interface a node of ``driver_name`` gets when it names none for ``interface_type``."""
    choices = _valid_choices(hw_type, interface_type)
    configured = getattr(CONF.conductor, f"default_{interface_type}_interface")
    if configured:
        if configured in choices:
            return configured
        raise exception.InvalidParameterValue(
            err=f"{_where(node)}[conductor]default_{interface_type}_interface={configured} cannot be used "
            f'with hardware type "{driver_name}"; valid choices: {", ".join(choices) or "none"}.'
        )
    if not choices:
        raise exception.InvalidParameterValue(
            err=f"{_where(node)}no {interface_type} interface is both supported by hardware type "
            f'"{driver_name}" '
            f"({', '.join(hw_type.supported_interfaces(interface_type))}) and enabled "
            f"([conductor]enabled_{interface_type}_interfaces)."
        )
    return choices[0]


def _where(node) -> str:
    return f"Node {node}: " if node else ""


def _get(node: Any, column: str) -> Any:
    if isinstance(node, Mapping):
        return node.get(column)
    return getattr(node, column, None)


def _ident(node: Any) -> str | None:
    return _get(node, "uuid") or _get(node, "name")


def check_and_update_node_interfaces(node: Any) -> dict[str, str]:
    """Validate the node's driver and *_interface names; return every *_interface with defaults filled.

    ``node`` is a Node or a dict of node values (as create_node receives). Raises DriverNotFound
    for an unknown hardware type, InterfaceNotFoundInEntrypoint for an interface that is not
    enabled, InvalidParameterValue for one its hardware type does not support; each message names
    the node, the interface and the valid choices.
    """
    ident = _ident(node)
    driver_name = _get(node, "driver")
    if not driver_name:
        raise exception.MissingParameterValue(err=f"{_where(ident)}driver (the hardware type) is required.")
    hw_type = get_hardware_type(driver_name, ident)
    result: dict[str, str] = {}
    for interface_type in base.INTERFACE_TYPES:
        column = f"{interface_type}_interface"
        name = _get(node, column)
        if not name:
            result[column] = default_interface(hw_type, interface_type, driver_name, ident)
            continue
        enabled = getattr(CONF.conductor, f"enabled_{interface_type}_interfaces")
        choices = _valid_choices(hw_type, interface_type)
        if name not in enabled:
            raise exception.InterfaceNotFoundInEntrypoint(
                f'{_where(ident)}{column} "{name}" is not enabled on this conductor '
                f"([conductor]enabled_{interface_type}_interfaces); valid choices for hardware type "
                f'"{driver_name}": {", ".join(choices) or "none"}.'
            )
        if name not in hw_type.supported_interfaces(interface_type):
            raise exception.InvalidParameterValue(
                err=f'{_where(ident)}{column} "{name}" is not supported by hardware type "{driver_name}"; '
                f"valid choices: {', '.join(choices) or 'none'}."
            )
        result[column] = name
    return result


def build_driver_for_node(node: Any) -> ComposedDriver:
    """Compose the interfaces ``node`` uses (its own names, or the hardware type's defaults)."""
    names = check_and_update_node_interfaces(node)
    hw_type = get_hardware_type(_get(node, "driver"), _ident(node))
    parts = {}
    for interface_type in base.INTERFACE_TYPES:
        parts[interface_type] = interfaces(interface_type)[names[f"{interface_type}_interface"]]
    return ComposedDriver(
        name=_get(node, "driver"),
        hardware_type=hw_type,
        interface_names={k.removesuffix("_interface"): v for k, v in names.items()},
        **parts,
    )


def build_driver_for_task(task: Any) -> ComposedDriver:
    """Compose the interfaces for ``task.node``."""
    return build_driver_for_node(task.node)
