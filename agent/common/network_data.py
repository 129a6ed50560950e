"""Nova's network_data.json (links, networks, services) for a node, from its ports and network_data.

The node's ``network_data`` (``instance_info["network_data"]`` or the node's own field) is Nova's
format; a link may name its port (``"port"``: port UUID or name, or ``"id"`` equal to one) instead
of giving ``ethernet_mac_address``, and takes the port's MAC and MTU. Without network_data, every
port becomes a ``phy`` link, every portgroup a ``bond`` of its ports (its mode as ``bond_mode``, its
properties as ``bond_*`` keys), and PXE-enabled ports or bonds get DHCP (IPv4). Used by the
conductor (to build the configdrive) and by the agent (to write it).
"""

from __future__ import annotations

import copy
import ipaddress
import re

from agent.common import exception

LINK_TYPES = ("phy", "bond", "vlan", "ethernet", "bridge", "ovs", "tap", "vif", "vhostuser", "hw_veb")
NETWORK_TYPES = (
    "ipv4",
    "ipv6",
    "ipv4_dhcp",
    "ipv6_dhcp",
    "ipv6_slaac",
    "ipv6_dhcpv6-stateful",
    "ipv6_dhcpv6-stateless",
)
BOND_MODES = (
    "balance-rr",
    "active-backup",
    "balance-xor",
    "broadcast",
    "802.3ad",
    "balance-tlb",
    "balance-alb",
)
_MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


def _bad(where: str, why: str) -> exception.InvalidParameterValue:
    return exception.InvalidParameterValue(err=f"network_data: {where}: {why}")


def _mac(value, where: str) -> str:
    mac = str(value or "").strip().lower().replace("-", ":")
    if not _MAC_RE.match(mac):
        raise _bad(where, f"{value!r} is not a MAC address")
    return mac


def _port_mtu(port: dict) -> int | None:
    mtu = port.get("mtu") or (port.get("extra") or {}).get("mtu")
    try:
        return int(mtu) if mtu else None
    except (TypeError, ValueError):
        return None


def _port_index(ports: list[dict]) -> dict[str, dict]:
    index: dict[str, dict] = {}
    for port in ports:
        for key in ("uuid", "name", "address"):
            value = port.get(key)
            if value:
                index[str(value).lower()] = port
    return index


def _bond_link(portgroup: dict, i: int, member_ids: list[str], member_macs: list[str]) -> dict:
    """Nova's bond link for a portgroup: its mode, and its properties as bond_* keys (cloud-init's)."""
    mode = str(portgroup.get("mode") or "active-backup")
    if mode.isdigit() and int(mode) < len(BOND_MODES):
        mode = BOND_MODES[int(mode)]
    if mode not in BOND_MODES:
        raise _bad(
            f"portgroup {portgroup.get('uuid')}", f"mode {mode!r} is not one of {', '.join(BOND_MODES)}"
        )
    link = {
        "id": portgroup.get("name") or f"bond{i}",
        "type": "bond",
        "bond_links": member_ids,
        "bond_mode": mode,
        "ethernet_mac_address": _mac(
            portgroup.get("address") or member_macs[0], f"portgroup {portgroup.get('uuid')}"
        ),
    }
    for key, value in sorted((portgroup.get("properties") or {}).items()):
        link[key if key.startswith("bond_") else f"bond_{key}"] = value
    if portgroup.get("uuid"):
        link["vif_id"] = portgroup["uuid"]
    return link


def default_network_data(ports: list[dict], portgroups: list[dict] | None = None) -> dict:
    """One phy link per port and one bond per portgroup with ports; DHCP on the PXE-enabled ones.

    A portgroup's ports become the bond's members (no address of their own); DHCP runs on the
    bond when one of its ports is PXE-enabled. When nothing is PXE-enabled the first link gets DHCP.
    """
    ports = [p for p in ports if p.get("address")]
    groups = {pg.get("id"): pg for pg in portgroups or [] if pg.get("id") is not None}
    links, networks, members = [], [], {}
    for i, port in enumerate(ports):
        link_id = port.get("name") or f"port{i}"
        link = {
            "id": link_id,
            "type": "phy",
            "ethernet_mac_address": _mac(port["address"], f"port {link_id}"),
        }
        if _port_mtu(port):
            link["mtu"] = _port_mtu(port)
        if port.get("uuid"):
            link["vif_id"] = port["uuid"]
        links.append(link)
        if port.get("portgroup_id") in groups:
            members.setdefault(port["portgroup_id"], []).append((link, port))
    dhcp: list[str] = []
    for link, port in zip(links, ports, strict=True):
        if port.get("portgroup_id") not in groups and port.get("pxe_enabled", True):
            dhcp.append(link["id"])
    for i, (pg_id, group) in enumerate(sorted(members.items(), key=lambda m: m[0])):
        bond = _bond_link(
            groups[pg_id],
            i,
            [link["id"] for link, _ in group],
            [link["ethernet_mac_address"] for link, _ in group],
        )
        links.append(bond)
        if any(port.get("pxe_enabled", True) for _, port in group):
            dhcp.append(bond["id"])
    if not dhcp and links:
        standalone = [link for link in links if link["type"] == "bond"] or links
        dhcp.append(standalone[0]["id"])
    for link_id in dhcp:
        networks.append({"id": f"network{len(networks)}", "type": "ipv4_dhcp", "link": link_id})
    return {"links": links, "networks": networks, "services": []}


def _check_ip(value, where: str, version: int | None = None) -> str:
    try:
        ip = ipaddress.ip_address(str(value))
    except ValueError as exc:
        raise _bad(where, f"{value!r} is not an IP address") from exc
    if version and ip.version != version:
        raise _bad(where, f"{value} is not an IPv{version} address")
    return str(ip)


def _link(raw: dict, i: int, ports: dict[str, dict]) -> dict:
    if not isinstance(raw, dict):
        raise _bad(f"links[{i}]", "must be an object")
    link = copy.deepcopy(raw)
    link_id = link.get("id")
    if not link_id or not isinstance(link_id, str):
        raise _bad(f"links[{i}]", "needs a string id")
    kind = link.setdefault("type", "phy")
    if kind not in LINK_TYPES:
        raise _bad(f"link {link_id}", f"type {kind!r} is not one of {', '.join(LINK_TYPES)}")
    port = ports.get(str(link.pop("port", "") or "").lower()) or ports.get(link_id.lower())
    if kind == "phy" and port is None and not link.get("ethernet_mac_address"):
        raise _bad(f"link {link_id}", "a phy link needs ethernet_mac_address or a port (UUID or name)")
    if port is not None:
        link.setdefault("ethernet_mac_address", port["address"])
        if _port_mtu(port):
            link.setdefault("mtu", _port_mtu(port))
        if port.get("uuid"):
            link.setdefault("vif_id", port["uuid"])
    if link.get("ethernet_mac_address"):
        link["ethernet_mac_address"] = _mac(link["ethernet_mac_address"], f"link {link_id}")
    if "mtu" in link and link["mtu"] is not None:
        if not isinstance(link["mtu"], int) or not 68 <= link["mtu"] <= 65535:
            raise _bad(f"link {link_id}", f"mtu {link['mtu']!r} is not an integer in 68..65535")
    if kind == "bond":
        members = link.get("bond_links")
        if not isinstance(members, list) or not members:
            raise _bad(f"link {link_id}", "a bond needs bond_links, a list of link ids")
        if link.get("bond_mode", "active-backup") not in BOND_MODES:
            raise _bad(
                f"link {link_id}", f"bond_mode {link['bond_mode']!r} is not one of {', '.join(BOND_MODES)}"
            )
        link.setdefault("bond_mode", "active-backup")
    if kind == "vlan":
        vid = link.get("vlan_id")
        if not isinstance(vid, int) or not 1 <= vid <= 4094:
            raise _bad(f"link {link_id}", f"vlan_id {vid!r} is not an integer in 1..4094")
        if not link.get("vlan_link"):
            raise _bad(f"link {link_id}", "a vlan link needs vlan_link, the id of its parent link")
        if link.get("vlan_mac_address"):
            link["vlan_mac_address"] = _mac(link["vlan_mac_address"], f"link {link_id}")
    return link


def _network(raw: dict, i: int, link_ids: set[str]) -> dict:
    if not isinstance(raw, dict):
        raise _bad(f"networks[{i}]", "must be an object")
    net = copy.deepcopy(raw)
    net_id = net.setdefault("id", f"network{i}")
    kind = net.get("type")
    if kind not in NETWORK_TYPES:
        raise _bad(f"network {net_id}", f"type {kind!r} is not one of {', '.join(NETWORK_TYPES)}")
    if net.get("link") not in link_ids:
        raise _bad(
            f"network {net_id}", f"link {net.get('link')!r} is not a link id ({', '.join(sorted(link_ids))})"
        )
    version = 6 if kind.startswith("ipv6") else 4
    if kind in ("ipv4", "ipv6"):
        if not net.get("ip_address"):
            raise _bad(f"network {net_id}", f"a static {kind} network needs ip_address")
        net["ip_address"] = _check_ip(net["ip_address"], f"network {net_id} ip_address", version)
        if not net.get("netmask"):
            raise _bad(f"network {net_id}", "a static network needs netmask")
    for j, route in enumerate(net.get("routes") or []):
        where = f"network {net_id} routes[{j}]"
        if not isinstance(route, dict) or not {"network", "netmask", "gateway"} <= set(route):
            raise _bad(where, "a route needs network, netmask and gateway")
        _check_ip(route["network"], where, version)
        _check_ip(route["gateway"], where, version)
    _services(net.get("services") or [], f"network {net_id}")
    return net


def _services(services: list, where: str) -> list:
    if not isinstance(services, list):
        raise _bad(where, "services must be a list")
    for j, svc in enumerate(services):
        if not isinstance(svc, dict) or svc.get("type") != "dns" or not svc.get("address"):
            raise _bad(f"{where} services[{j}]", "a service is {'type': 'dns', 'address': IP}")
        _check_ip(svc["address"], f"{where} services[{j}]")
    return services


def build_network_data(
    ports: list[dict], network_data: dict | None = None, portgroups: list[dict] | None = None
) -> dict:
    """Validate ``network_data`` against the ports (filling MACs and MTUs) or build the default."""
    ports = [p for p in ports or [] if isinstance(p, dict)]
    if not network_data:
        return default_network_data(ports, portgroups)
    if not isinstance(network_data, dict):
        raise _bad("document", f"must be an object, got {type(network_data).__name__}")
    index = _port_index(ports)
    links = [_link(raw, i, index) for i, raw in enumerate(network_data.get("links") or [])]
    ids = [link["id"] for link in links]
    dupes = sorted({x for x in ids if ids.count(x) > 1})
    if dupes:
        raise _bad("links", f"duplicate link ids {', '.join(dupes)}")
    link_ids = set(ids)
    by_id = {link["id"]: link for link in links}
    for link in links:
        if link["type"] == "bond":
            missing = [m for m in link["bond_links"] if m not in link_ids]
            if missing:
                raise _bad(
                    f"link {link['id']}", f"bond_links {', '.join(map(str, missing))} are not link ids"
                )
            if not link.get("ethernet_mac_address"):
                first = by_id[link["bond_links"][0]].get("ethernet_mac_address")
                if first:
                    link["ethernet_mac_address"] = first
        if link["type"] == "vlan" and link["vlan_link"] not in link_ids:
            raise _bad(f"link {link['id']}", f"vlan_link {link['vlan_link']!r} is not a link id")
    networks = [_network(raw, i, link_ids) for i, raw in enumerate(network_data.get("networks") or [])]
    services = _services(copy.deepcopy(network_data.get("services") or []), "document")
    return {"links": links, "networks": networks, "services": services}
