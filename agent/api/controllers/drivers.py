"""/v1/drivers: the hardware types the live conductors load, with their hosts."""

from __future__ import annotations

from typing import Any

import webob

from agent.api import base, errors, versions
from agent.api.router import Router
from agent.common import exception, interfaces
from agent.conductor.drivers import base as drivers_base
from agent.conductor.drivers import driver_factory
from agent.db import api as db_api

# firmware_interface (1.86) is a node field of its own, beside Ironic's older interface list.
_IFACES = (*interfaces.NODE_INTERFACES, "firmware")
_FIRMWARE_KEYS = ("default_firmware_interface", "enabled_firmware_interfaces")
DRIVER_FIELDS = {"name", "hosts", "type", "links", "properties"} | {
    f"{kind}_{iface}_interface{'s' if kind == 'enabled' else ''}"
    for kind in ("default", "enabled")
    for iface in _IFACES
}


def _hosts_by_driver() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for conductor in db_api.get_online_conductors(base.CONF.conductor.heartbeat_timeout):
        for name in conductor.drivers or []:
            found.setdefault(name, []).append(conductor.hostname)
    return {name: sorted(hosts) for name, hosts in found.items()}


def _interfaces(name: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    try:
        hw_type = driver_factory.get_hardware_type(name)
    except exception.DriverNotFound:
        hw_type = None
    # Ironic reports every node interface per hardware type; Kiln's types implement a few.
    for iface in _IFACES:
        default, enabled = None, []
        if hw_type is not None and iface in drivers_base.INTERFACE_TYPES:
            enabled_conf = getattr(base.CONF.conductor, f"enabled_{iface}_interfaces")
            enabled = [n for n in hw_type.supported_interfaces(iface) if n in enabled_conf]
            try:
                default = driver_factory.default_interface(hw_type, iface, name)
            except exception.KilnException:
                default = None
        values[f"default_{iface}_interface"] = default
        values[f"enabled_{iface}_interfaces"] = enabled
    return values


def _render(
    req: base.ApiRequest, name: str, hosts: list[str], detail: bool, fields: list[str] | None
) -> dict:
    root = base.base_url(req)
    body: dict[str, Any] = {
        "name": name,
        "hosts": hosts,
        "links": [
            {"href": f"{root}/v1/drivers/{name}", "rel": "self"},
            {"href": f"{root}/drivers/{name}", "rel": "bookmark"},
        ],
    }
    if req.at_least(versions.STATES_LINK):
        body["properties"] = [
            {"href": f"{root}/v1/drivers/{name}/properties", "rel": "self"},
            {"href": f"{root}/drivers/{name}/properties", "rel": "bookmark"},
        ]
    if req.at_least(versions.DYNAMIC_DRIVERS):
        body["type"] = "dynamic"
        if detail:
            body.update(_interfaces(name))
            if not req.at_least(versions.FIRMWARE):
                for key in _FIRMWARE_KEYS:
                    del body[key]
    if fields is not None:
        body = {k: v for k, v in body.items() if k in fields}
    return body


def _fields(req: base.ApiRequest) -> list[str] | None:
    if "fields" not in req.GET:
        return None
    base.feature_version(req, versions.DRIVER_FIELDS, "The fields query parameter on drivers")
    return base.parse_fields(req, DRIVER_FIELDS)


def list_drivers(req: base.ApiRequest) -> webob.Response:
    """GET /v1/drivers (type=dynamic|classic, detail=True)."""
    kind = req.GET.get("type")
    if kind is not None and kind not in ("classic", "dynamic"):
        raise errors.HTTPBadRequest(f"Invalid driver type {kind!r}; use classic or dynamic.")
    detail = bool(base.parse_bool(req.GET.get("detail"), "detail"))
    fields = _fields(req)
    hosts = _hosts_by_driver() if kind != "classic" else {}
    drivers = [_render(req, name, h, detail, fields) for name, h in sorted(hosts.items())]
    return base.json_response({"drivers": drivers})


def get_driver(req: base.ApiRequest, driver_name: str) -> webob.Response:
    """GET /v1/drivers/{name}."""
    hosts = _hosts_by_driver()
    if driver_name not in hosts:
        raise exception.DriverNotFound(driver_name=driver_name)
    return base.json_response(_render(req, driver_name, hosts[driver_name], True, _fields(req)))


def get_driver_properties(req: base.ApiRequest, driver_name: str) -> webob.Response:
    """GET /v1/drivers/{name}/properties: driver_info keys of its default interfaces."""
    if driver_name not in _hosts_by_driver():
        raise exception.DriverNotFound(driver_name=driver_name)
    props: dict[str, str] = {}
    try:
        hw_type = driver_factory.get_hardware_type(driver_name)
        for iface in drivers_base.INTERFACE_TYPES:
            impl = driver_factory.default_interface(hw_type, iface, driver_name)
            props.update(driver_factory.interfaces(iface)[impl].get_properties())
    except exception.KilnException:
        pass
    return base.json_response(props)


def register(router: Router) -> None:
    """Add the driver routes."""
    router.add("GET", "/v1/drivers", list_drivers)
    router.add("GET", "/v1/drivers/{driver_name}", get_driver)
    router.add("GET", "/v1/drivers/{driver_name}/properties", get_driver_properties)
