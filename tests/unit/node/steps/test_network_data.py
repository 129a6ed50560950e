"""Nova's network_data.json from ports and the node's network_data (agent.common.network_data)."""

from __future__ import annotations

import pytest

from agent.common import exception
from agent.common.network_data import build_network_data

PORTS = [
    {
        "uuid": "8f4e0c1a-0000-4000-8000-000000000001",
        "name": "eth0",
        "address": "52:54:00:AA:BB:01",
        "pxe_enabled": True,
        "extra": {"mtu": 9000},
    },
    {
        "uuid": "8f4e0c1a-0000-4000-8000-000000000002",
        "name": "eth1",
        "address": "52:54:00:aa:bb:02",
        "pxe_enabled": False,
        "extra": {},
    },
]


def test_default_from_ports():
    doc = build_network_data(PORTS)
    assert doc["links"] == [
        {
            "id": "eth0",
            "type": "phy",
            "ethernet_mac_address": "52:54:00:aa:bb:01",
            "mtu": 9000,
            "vif_id": "8f4e0c1a-0000-4000-8000-000000000001",
        },
        {
            "id": "eth1",
            "type": "phy",
            "ethernet_mac_address": "52:54:00:aa:bb:02",
            "vif_id": "8f4e0c1a-0000-4000-8000-000000000002",
        },
    ]
    assert doc["networks"] == [{"id": "network0", "type": "ipv4_dhcp", "link": "eth0"}]
    assert doc["services"] == []


def test_bond_vlan_static_from_ports():
    doc = build_network_data(
        PORTS,
        {
            "links": [
                {"id": "p0", "port": "8f4e0c1a-0000-4000-8000-000000000001"},
                {"id": "eth1"},
                {"id": "bond0", "type": "bond", "bond_links": ["p0", "eth1"], "bond_mode": "802.3ad"},
                {"id": "vlan7", "type": "vlan", "vlan_link": "bond0", "vlan_id": 7},
            ],
            "networks": [
                {
                    "id": "v4",
                    "type": "ipv4",
                    "link": "vlan7",
                    "ip_address": "192.0.2.10",
                    "netmask": "255.255.255.0",
                    "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.0.2.1"}],
                },
                {
                    "id": "v6",
                    "type": "ipv6",
                    "link": "vlan7",
                    "ip_address": "2001:db8::10",
                    "netmask": "ffff:ffff::",
                },
                {"id": "d", "type": "ipv6_dhcp", "link": "eth1"},
            ],
            "services": [{"type": "dns", "address": "192.0.2.53"}],
        },
    )
    links = {link["id"]: link for link in doc["links"]}
    assert links["p0"]["ethernet_mac_address"] == "52:54:00:aa:bb:01"
    assert links["p0"]["mtu"] == 9000
    assert links["eth1"]["ethernet_mac_address"] == "52:54:00:aa:bb:02"
    assert links["bond0"]["ethernet_mac_address"] == "52:54:00:aa:bb:01"
    assert links["vlan7"] == {"id": "vlan7", "type": "vlan", "vlan_link": "bond0", "vlan_id": 7}
    assert [n["id"] for n in doc["networks"]] == ["v4", "v6", "d"]
    assert doc["services"] == [{"type": "dns", "address": "192.0.2.53"}]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"links": [{"id": "x", "type": "phy"}]}, "link x: a phy link needs ethernet_mac_address"),
        ({"links": [{"id": "eth0"}, {"id": "eth0"}]}, "duplicate link ids eth0"),
        (
            {"links": [{"id": "b", "type": "bond", "bond_links": ["nope"]}]},
            "bond_links nope are not link ids",
        ),
        (
            {
                "links": [
                    {"id": "b", "type": "bond", "bond_links": ["eth0"], "bond_mode": "fast"},
                    {"id": "eth0"},
                ]
            },
            "bond_mode 'fast'",
        ),
        ({"links": [{"id": "v", "type": "vlan", "vlan_link": "eth0", "vlan_id": 5000}]}, "vlan_id 5000"),
        ({"links": [{"id": "v", "type": "vlan", "vlan_link": "ghost", "vlan_id": 5}]}, "vlan_link 'ghost'"),
        ({"links": [{"id": "eth0", "mtu": 10}]}, "mtu 10"),
        (
            {
                "links": [{"id": "eth0"}],
                "networks": [{"type": "ipv4", "link": "eth0", "netmask": "255.0.0.0"}],
            },
            "needs ip_address",
        ),
        (
            {
                "links": [{"id": "eth0"}],
                "networks": [{"type": "ipv4", "link": "eth0", "ip_address": "2001:db8::1", "netmask": "x"}],
            },
            "is not an IPv4 address",
        ),
        ({"links": [{"id": "eth0"}], "networks": [{"type": "ipv5", "link": "eth0"}]}, "type 'ipv5'"),
        ({"links": [{"id": "eth0"}], "networks": [{"type": "ipv4_dhcp", "link": "eth9"}]}, "link 'eth9'"),
        (
            {"links": [{"id": "eth0"}], "networks": [{"type": "ipv4_dhcp", "link": "eth0", "routes": [{}]}]},
            "routes\\[0\\]: a route needs",
        ),
        ({"services": [{"type": "ntp", "address": "1.2.3.4"}]}, "services\\[0\\]"),
        ({"links": [{"id": "eth9", "ethernet_mac_address": "zz"}]}, "'zz' is not a MAC"),
    ],
)
def test_bad_network_data(doc, message):
    with pytest.raises(exception.InvalidParameterValue, match=message):
        build_network_data(PORTS, doc)


def test_portgroup_becomes_a_bond_with_its_mode_and_properties():
    ports = [
        {**PORTS[0], "portgroup_id": 7},
        {**PORTS[1], "portgroup_id": 7},
        {
            "uuid": "8f4e0c1a-0000-4000-8000-000000000003",
            "address": "52:54:00:aa:bb:03",
            "pxe_enabled": False,
        },
    ]
    group = {
        "id": 7,
        "uuid": "9e0f0c1a-0000-4000-8000-000000000007",
        "name": "bond0",
        "address": None,
        "mode": "4",
        "properties": {"miimon": "100", "bond_xmit_hash_policy": "layer3+4"},
    }
    doc = build_network_data(ports, None, [group])
    bond = doc["links"][-1]
    assert bond == {
        "id": "bond0",
        "type": "bond",
        "bond_links": ["eth0", "eth1"],
        "bond_mode": "802.3ad",
        "bond_miimon": "100",
        "bond_xmit_hash_policy": "layer3+4",
        "ethernet_mac_address": "52:54:00:aa:bb:01",
        "vif_id": group["uuid"],
    }
    # DHCP runs on the bond (a member is PXE-enabled), not on its members nor the lone non-PXE port.
    assert doc["networks"] == [{"id": "network0", "type": "ipv4_dhcp", "link": "bond0"}]


def test_portgroup_with_a_bad_mode_is_refused():
    with pytest.raises(exception.InvalidParameterValue, match="mode 'lacp' is not one of"):
        build_network_data([{**PORTS[0], "portgroup_id": 1}], None, [{"id": 1, "uuid": "u", "mode": "lacp"}])
