"""LLDP (IEEE 802.1AB) frames parsed into what the switch says about the port.

Field names follow Ironic's LLDP processing (``switch_chassis_id``, ``switch_port_id``,
``switch_system_name`` ...), so the conductor fills ``local_link_connection`` as Ironic does.
``raw`` keeps every TLV as IPA sends it: ``[[type, value hex], ...]``. Bad frames never raise.
"""

from __future__ import annotations

import ipaddress
import struct

ETH_P_LLDP = 0x88CC
LLDP_MULTICAST = bytes.fromhex("0180c200000e")

TLV_END, TLV_CHASSIS_ID, TLV_PORT_ID, TLV_TTL = 0, 1, 2, 3
TLV_PORT_DESC, TLV_SYS_NAME, TLV_SYS_DESC, TLV_SYS_CAP, TLV_MGMT_ADDR, TLV_ORG = 4, 5, 6, 7, 8, 127
OUI_8021 = b"\x00\x80\xc2"
OUI_8023 = b"\x00\x12\x0f"

CAPABILITIES = ("other", "repeater", "bridge", "wlan_ap", "router", "telephone", "docsis", "station",
                "c_vlan", "s_vlan", "tpmr")  # fmt: skip
_CHASSIS_SUBTYPES = {1: "chassis_component", 2: "interface_alias", 3: "port_component", 4: "mac_address",
                     5: "network_address", 6: "interface_name", 7: "local"}  # fmt: skip
_PORT_SUBTYPES = {1: "interface_alias", 2: "port_component", 3: "mac_address", 4: "network_address",
                  5: "interface_name", 6: "agent_circuit_id", 7: "local"}  # fmt: skip


def split_tlvs(payload: bytes) -> list[tuple[int, bytes]]:
    """The (type, value) TLVs of an LLDPDU, up to End or the first truncated TLV."""
    tlvs = []
    pos = 0
    while pos + 2 <= len(payload):
        header = struct.unpack_from("!H", payload, pos)[0]
        kind, length = header >> 9, header & 0x1FF
        pos += 2
        if kind == TLV_END:
            break
        if pos + length > len(payload):
            break
        tlvs.append((kind, payload[pos : pos + length]))
        pos += length
    return tlvs


def _mac(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").strip("\x00").strip()


def _address(family: int, data: bytes) -> str | None:
    try:
        if family == 1 and len(data) == 4:
            return str(ipaddress.IPv4Address(data))
        if family == 2 and len(data) == 16:
            return str(ipaddress.IPv6Address(data))
        if family == 6 and len(data) == 6:
            return _mac(data)
    except ValueError:
        return None
    return None


def _id_value(subtype: int, data: bytes, mac_subtype: int, addr_subtype: int) -> str:
    if subtype == mac_subtype and len(data) == 6:
        return _mac(data)
    if subtype == addr_subtype and data:
        return _address(data[0], data[1:]) or data.hex()
    text = _text(data)
    return text if text.isprintable() and text else data.hex()


def _caps(bits: int) -> list[str]:
    return [name for i, name in enumerate(CAPABILITIES) if bits & (1 << i)]


def _org_8021(out: dict, subtype: int, data: bytes) -> None:
    if subtype == 1 and len(data) >= 2:
        out["switch_port_untagged_vlan_id"] = struct.unpack_from("!H", data)[0]
    elif subtype == 2 and len(data) >= 3:
        flags, vid = data[0], struct.unpack_from("!H", data, 1)[0]
        if flags & 0x02:  # enabled
            out.setdefault("switch_port_protocol_vlan_ids", []).append(vid)
        if flags & 0x02 or flags & 0x01:
            out.setdefault("switch_port_protocol_vlan_support", bool(flags & 0x01))
    elif subtype == 3 and len(data) >= 3:
        vid, length = struct.unpack_from("!HB", data)
        out.setdefault("switch_port_vlans", []).append({"id": vid, "name": _text(data[3 : 3 + length])})
    elif subtype == 7 and len(data) >= 5:
        _aggregation(out, data)


def _aggregation(out: dict, data: bytes) -> None:
    status, agg_id = data[0], struct.unpack_from("!I", data, 1)[0]
    out["switch_port_link_aggregation_support"] = bool(status & 0x01)
    out["switch_port_link_aggregation_enabled"] = bool(status & 0x02)
    out["switch_port_link_aggregation_id"] = agg_id


def _org_8023(out: dict, subtype: int, data: bytes) -> None:
    if subtype == 1 and len(data) >= 5:
        out["switch_port_autonegotiation_support"] = bool(data[0] & 0x01)
        out["switch_port_autonegotiation_enabled"] = bool(data[0] & 0x02)
        out["switch_port_mau_type"] = struct.unpack_from("!H", data, 3)[0]
    elif subtype == 3 and len(data) >= 5:
        _aggregation(out, data)
    elif subtype == 4 and len(data) >= 2:
        out["switch_port_mtu"] = struct.unpack_from("!H", data)[0]


def _mgmt_address(data: bytes) -> str | None:
    if len(data) < 2:
        return None
    length = data[0]  # covers the subtype byte and the address
    if length < 2 or 1 + length > len(data):
        return None
    return _address(data[1], data[2 : 1 + length])


def parse_tlvs(tlvs: list[tuple[int, bytes]]) -> dict:
    """What the TLVs say, under Ironic's names; unknown or garbled TLVs are only kept in ``raw``."""
    out: dict = {"raw": [[kind, value.hex()] for kind, value in tlvs]}
    for kind, value in tlvs:
        try:
            if kind == TLV_CHASSIS_ID and len(value) >= 2:
                out["switch_chassis_id"] = _id_value(value[0], value[1:], 4, 5)
                out["switch_chassis_id_subtype"] = _CHASSIS_SUBTYPES.get(value[0], str(value[0]))
            elif kind == TLV_PORT_ID and len(value) >= 2:
                out["switch_port_id"] = _id_value(value[0], value[1:], 3, 4)
                out["switch_port_id_subtype"] = _PORT_SUBTYPES.get(value[0], str(value[0]))
            elif kind == TLV_TTL and len(value) >= 2:
                out["ttl"] = struct.unpack_from("!H", value)[0]
            elif kind == TLV_PORT_DESC:
                out["switch_port_description"] = _text(value)
            elif kind == TLV_SYS_NAME:
                out["switch_system_name"] = _text(value)
            elif kind == TLV_SYS_DESC:
                out["switch_system_description"] = _text(value)
            elif kind == TLV_SYS_CAP and len(value) >= 4:
                supported, enabled = struct.unpack_from("!HH", value)
                out["switch_capabilities_support"] = _caps(supported)
                out["switch_capabilities_enabled"] = _caps(enabled)
            elif kind == TLV_MGMT_ADDR:
                addr = _mgmt_address(value)
                if addr:
                    out.setdefault("switch_mgmt_addresses", []).append(addr)
            elif kind == TLV_ORG and len(value) >= 4:
                oui, subtype, data = value[:3], value[3], value[4:]
                if oui == OUI_8021:
                    _org_8021(out, subtype, data)
                elif oui == OUI_8023:
                    _org_8023(out, subtype, data)
        except (struct.error, IndexError, ValueError):
            continue  # a garbled TLV: its hex stays in raw
    return out


def parse_frame(frame: bytes) -> dict | None:
    """Parse an Ethernet frame carrying LLDP (optionally 802.1Q-tagged); None when it is not LLDP."""
    if len(frame) < 14:
        return None
    offset = 12
    ethertype = struct.unpack_from("!H", frame, offset)[0]
    while ethertype in (0x8100, 0x88A8) and len(frame) >= offset + 6:
        offset += 4
        ethertype = struct.unpack_from("!H", frame, offset)[0]
    if ethertype != ETH_P_LLDP:
        return None
    parsed = parse_tlvs(split_tlvs(frame[offset + 2 :]))
    parsed["source_mac"] = _mac(frame[6:12])
    return parsed


def parse_raw(raw: list) -> dict:
    """Parse IPA's ``[[type, hex], ...]`` form (ignoring malformed entries)."""
    tlvs = []
    for item in raw or []:
        try:
            kind, value = item
            tlvs.append((int(kind), bytes.fromhex(value)))
        except (TypeError, ValueError):
            continue
    return parse_tlvs(tlvs)


def local_link_connection(parsed: dict) -> dict:
    """Ironic's port local_link_connection (switch_id, port_id, switch_info) from parsed LLDP."""
    if not isinstance(parsed, dict) or not parsed.get("switch_port_id"):
        return {}
    out = {"port_id": parsed["switch_port_id"]}
    if parsed.get("switch_chassis_id_subtype") == "mac_address" and parsed.get("switch_chassis_id"):
        out["switch_id"] = parsed["switch_chassis_id"]  # Ironic's switch_id is a MAC
    if parsed.get("switch_system_name"):
        out["switch_info"] = parsed["switch_system_name"]
    return out
