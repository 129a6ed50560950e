"""The LLDP TLV parser (agent.inventory.lldp) on frames built byte by byte."""

from __future__ import annotations

import struct

from agent.inventory import lldp


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!H", (kind << 9) | len(value)) + value


def org(oui: bytes, subtype: int, data: bytes) -> bytes:
    return tlv(127, oui + bytes([subtype]) + data)


def frame(*tlvs: bytes, vlan_tag: bool = False) -> bytes:
    head = lldp.LLDP_MULTICAST + bytes.fromhex("0cc47a0b0c0d")
    if vlan_tag:
        head += b"\x81\x00\x00\x07"
    return head + b"\x88\xcc" + b"".join(tlvs) + tlv(0, b"")


SWITCH = frame(
    tlv(1, b"\x04" + bytes.fromhex("0cc47a0b0c00")),  # chassis id: MAC
    tlv(2, b"\x05Ethernet1/7"),  # port id: interface name
    tlv(3, b"\x00\x78"),
    tlv(4, b"to gpu-node-17 eth0"),
    tlv(5, b"leaf-a12.dc1"),
    tlv(6, b"Arista Networks EOS 4.30"),
    tlv(7, struct.pack("!HH", 0b10100, 0b00100)),  # bridge+router supported, bridge enabled
    tlv(8, bytes([5, 1]) + bytes([10, 0, 0, 12]) + b"\x02" + struct.pack("!I", 1) + b"\x00"),
    org(lldp.OUI_8021, 1, struct.pack("!H", 100)),
    org(lldp.OUI_8021, 3, struct.pack("!HB", 100, 7) + b"storage"),
    org(lldp.OUI_8021, 3, struct.pack("!HB", 200, 3) + b"k8s"),
    org(lldp.OUI_8023, 3, b"\x03" + struct.pack("!I", 1007)),
    org(lldp.OUI_8023, 4, struct.pack("!H", 9216)),
    org(lldp.OUI_8023, 1, b"\x03" + struct.pack("!HH", 0x6C01, 30)),
)


def test_switch_frame():
    got = lldp.parse_frame(SWITCH)
    assert got["switch_chassis_id"] == "0c:c4:7a:0b:0c:00"
    assert got["switch_chassis_id_subtype"] == "mac_address"
    assert got["switch_port_id"] == "Ethernet1/7"
    assert got["switch_port_id_subtype"] == "interface_name"
    assert got["ttl"] == 120
    assert got["switch_port_description"] == "to gpu-node-17 eth0"
    assert got["switch_system_name"] == "leaf-a12.dc1"
    assert got["switch_system_description"] == "Arista Networks EOS 4.30"
    assert got["switch_capabilities_support"] == ["bridge", "router"]
    assert got["switch_capabilities_enabled"] == ["bridge"]
    assert got["switch_mgmt_addresses"] == ["10.0.0.12"]
    assert got["switch_port_untagged_vlan_id"] == 100
    assert got["switch_port_vlans"] == [{"id": 100, "name": "storage"}, {"id": 200, "name": "k8s"}]
    assert got["switch_port_link_aggregation_support"] is True
    assert got["switch_port_link_aggregation_enabled"] is True
    assert got["switch_port_link_aggregation_id"] == 1007
    assert got["switch_port_mtu"] == 9216
    assert got["switch_port_autonegotiation_enabled"] is True
    assert got["switch_port_mau_type"] == 30
    assert got["source_mac"] == "0c:c4:7a:0b:0c:0d"
    assert got["raw"][0] == [1, "040cc47a0b0c00"]
    assert got["raw"][4] == [5, b"leaf-a12.dc1".hex()]
    assert len(got["raw"]) == 14
    assert lldp.parse_raw(got["raw"])["switch_port_mtu"] == 9216  # IPA's [[type, hex]] form parses alike


def test_tagged_frame_and_network_address_ids():
    f = frame(tlv(1, b"\x05\x01" + bytes([192, 0, 2, 1])), tlv(2, b"\x03" + bytes.fromhex("aabbccddeeff")),
              vlan_tag=True)  # fmt: skip
    got = lldp.parse_frame(f)
    assert got["switch_chassis_id"] == "192.0.2.1"
    assert got["switch_port_id"] == "aa:bb:cc:dd:ee:ff"


def test_garbage_never_raises():
    assert lldp.parse_frame(b"") is None
    assert lldp.parse_frame(b"\x00" * 12 + b"\x08\x00" + b"\x45" * 40) is None  # IPv4, not LLDP
    truncated = frame(tlv(5, b"leaf"))[:-2] + struct.pack("!H", (6 << 9) | 300) + b"short"  # no End TLV
    got = lldp.parse_frame(truncated)
    assert got["switch_system_name"] == "leaf"
    assert "switch_system_description" not in got
    bad = frame(tlv(1, b"\x04"), tlv(8, b"\xff\x01"), tlv(7, b"\x00"), org(lldp.OUI_8021, 3, b"\x00"))
    got = lldp.parse_frame(bad)
    assert "switch_chassis_id" not in got
    assert "switch_mgmt_addresses" not in got
    assert "switch_port_vlans" not in got
    assert len(got["raw"]) == 4
    assert lldp.parse_raw([["x", "zz"], [5, "6c656166"], None]) == {
        "raw": [[5, "6c656166"]],
        "switch_system_name": "leaf",
    }


def test_local_link_connection():
    got = lldp.parse_frame(SWITCH)
    assert lldp.local_link_connection(got) == {
        "port_id": "Ethernet1/7",
        "switch_id": "0c:c4:7a:0b:0c:00",
        "switch_info": "leaf-a12.dc1",
    }
    named = lldp.parse_frame(frame(tlv(1, b"\x07chassis-1"), tlv(2, b"\x05swp1")))
    assert lldp.local_link_connection(named) == {"port_id": "swp1"}  # no MAC chassis id: no switch_id
    assert lldp.local_link_connection({}) == {}
    assert lldp.local_link_connection(None) == {}
