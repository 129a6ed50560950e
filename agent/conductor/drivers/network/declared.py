"""The networks Kiln knows: ``[network:NAME]`` sections of the conductor's config files, and who may use them.

Each section declares one VLAN::

    [network:tenant-a]
    vlan_id = 210
    project = 6b1c...        # the owning project; or
    shared = true            # any project may attach it
    physical_network = dc1   # optional: only ports on this physical network carry it

A VIF's id names a network. A project's network is attached only to nodes that project uses
(the node's lessee, or its owner when it has no lessee); a caller scoped to a project may only
attach that project's networks or shared ones. The service networks (provisioning, cleaning,
inspection, rescuing: [network] options or the node's driver_info) are never tenant VIFs.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from typing import Any

from oslo_config import cfg
from oslo_utils import strutils

from agent.common import exception
from agent.common.config import CONF

SECTION = "network:"
SERVICE_KEYS = ("provisioning_network", "cleaning_network", "inspection_network", "rescuing_network")
_KEYS = {"vlan_id", "project", "shared", "physical_network", "description"}


@dataclasses.dataclass(frozen=True)
class Network:
    """One declared network: a VLAN, owned by a project or shared."""

    name: str
    vlan_id: int
    project: str | None = None
    shared: bool = False
    physical_network: str | None = None
    source: str = ""


def config_files(conf: cfg.ConfigOpts = CONF) -> list[str]:
    """The conductor's config files in the order oslo.config reads them (files, then each dir's *.conf)."""
    files = list(conf.config_file or [])
    for folder in conf.config_dir or []:
        files.extend(sorted(glob.glob(os.path.join(folder, "*.conf"))))
    return files


def read_sections(prefix: str, conf: cfg.ConfigOpts = CONF) -> dict[str, tuple[dict[str, str], str]]:
    """Sections ``[<prefix>NAME]`` of the config files: {NAME: ({key: value}, file)}; later files win."""
    found: dict[str, tuple[dict[str, str], str]] = {}
    for path in config_files(conf):
        sections: dict[str, dict[str, list[str]]] = {}
        try:
            cfg.ConfigParser(path, sections).parse()
        except OSError:
            continue
        for title, values in sections.items():
            if title.startswith(prefix):
                found[title[len(prefix) :]] = ({k: v[-1] for k, v in values.items()}, path)
    return found


def _network(name: str, values: dict[str, str], path: str) -> Network:
    where = f"[{SECTION}{name}] in {path}"
    unknown = sorted(set(values) - _KEYS)
    if unknown:
        raise exception.InvalidParameterValue(
            err=f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}."
        )
    try:
        vlan = int(values.get("vlan_id", ""))
    except ValueError:
        vlan = 0
    if not 1 <= vlan <= 4094:
        raise exception.InvalidParameterValue(
            err=f"{where}: vlan_id {values.get('vlan_id')!r} is not an integer in 1..4094."
        )
    try:
        shared = strutils.bool_from_string(values.get("shared", "false"), strict=True)
    except ValueError:
        raise exception.InvalidParameterValue(
            err=f"{where}: shared {values.get('shared')!r} is not true or false."
        ) from None
    project = values.get("project") or None
    if shared == bool(project):
        raise exception.InvalidParameterValue(
            err=f"{where}: set exactly one of project (the owning project's id) and shared = true."
        )
    return Network(name, vlan, project, shared, values.get("physical_network") or None, path)


def load_networks(conf: cfg.ConfigOpts = CONF) -> dict[str, Network]:
    """Every declared network by name; InvalidParameterValue naming the section of a bad one."""
    networks = {
        name: _network(name, values, path) for name, (values, path) in read_sections(SECTION, conf).items()
    }
    vlans: dict[int, str] = {}
    for net in networks.values():
        if net.vlan_id in vlans:
            raise exception.InvalidParameterValue(
                err=f"Networks {vlans[net.vlan_id]} and {net.name} both declare vlan_id {net.vlan_id}; "
                "each network needs its own VLAN."
            )
        vlans[net.vlan_id] = net.name
    return networks


def get_network(name: str, conf: cfg.ConfigOpts = CONF) -> Network:
    """The declared network ``name``; NetworkNotFound telling where to declare it."""
    networks = load_networks(conf)
    if name not in networks:
        known = ", ".join(sorted(networks)) or "none"
        raise exception.NetworkNotFound(
            f"Network {name} is not declared (known: {known}); an operator declares it in a "
            f"[{SECTION}{name}] section of the conductor's config with vlan_id and project or shared."
        )
    return networks[name]


def service_network_name(node: Any, key: str) -> str | None:
    """The name of the node's ``key`` network (driver_info, else [network], else the provisioning one)."""
    info = node.driver_info or {}
    name = info.get(key) or getattr(CONF.network, key)
    if not name and key != "provisioning_network":
        name = info.get("provisioning_network") or CONF.network.provisioning_network
    return name or None


def service_network(node: Any, key: str) -> Network:
    """The node's ``key`` network, declared; a clear error when none is set or it is not declared."""
    name = service_network_name(node, key)
    if not name:
        raise exception.InvalidParameterValue(
            err=f"Node {node.uuid} has no {key}: set driver_info {key} or [network]{key} "
            "(or provisioning_network) to a declared network."
        )
    return get_network(name)


def node_project(node: Any) -> str | None:
    """The project using the node: its lessee, else its owner (None when it has neither)."""
    return node.lessee or node.owner or None


def check_attach(node: Any, network: Network, ctxt: dict | None) -> None:
    """Refuse (with the reason) attaching ``network`` to ``node`` for the caller of ``ctxt``."""
    ctxt = ctxt or {}
    service = {service_network_name(node, key) for key in SERVICE_KEYS}
    if network.name in service:
        raise exception.NetworkNotAllowed(
            f"Network {network.name} is a service network (provisioning, cleaning, inspection or "
            f"rescuing) of node {node.uuid}; it cannot be attached as a tenant VIF."
        )
    caller = None if ctxt.get("is_admin") else ctxt.get("project_id")
    if network.shared:
        return
    if caller is not None and caller != network.project:
        raise exception.NetworkNotAllowed(
            f"Network {network.name} belongs to project {network.project}, not to the caller's "
            f"project {caller}; a project may only attach its own or shared networks."
        )
    user = node_project(node)
    if user != network.project:
        whose = f"is used by project {user}" if user else "belongs to no project (no owner or lessee)"
        raise exception.NetworkNotAllowed(
            f"Network {network.name} belongs to project {network.project}, but node {node.uuid} {whose}; "
            "a project's network can only be attached to a node that project owns or leases."
        )
