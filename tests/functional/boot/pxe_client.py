"""What PXE firmware does, run inside the client namespace: python pxe_client.py dhcp|tftp|http ...

dhcp IFACE MAC ARCH [--ipxe|--plain]: one DHCPDISCOVER (broadcast flag, PXE vendor class, client arch,
iPXE user class when asked; --plain: none of them, as a booted OS asks); prints the first DHCPOFFER for
MAC as JSON, or {"offer": null} after 3 s.
tftp SERVER NAME OUT: fetch NAME over TFTP. http URL OUT: fetch URL over HTTP.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time
import urllib.request

MAGIC = b"\x63\x82\x53\x63"


def discover(mac: str, arch: int, ipxe: bool, xid: int, plain: bool = False) -> bytes:
    """A DHCPDISCOVER as PXE firmware (or iPXE, or with ``plain`` an installed OS) sends it."""
    chaddr = bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0")
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1,
        1,
        6,
        0,
        xid,
        0,
        0x8000,
        b"\0" * 4,
        b"\0" * 4,
        b"\0" * 4,
        b"\0" * 4,
        chaddr,
        b"",
        b"",
    )
    options = bytearray(MAGIC)
    options += bytes([53, 1, 1])  # DHCPDISCOVER
    options += bytes([55, 6, 1, 3, 43, 60, 66, 67])
    if not plain:
        vendor = b"PXEClient:Arch:%05d:UNDI:002001" % arch
        options += bytes([60, len(vendor)]) + vendor
        options += bytes([93, 2]) + struct.pack("!H", arch)
        options += bytes([94, 3, 1, 2, 1])
    if ipxe:
        options += bytes([77, 4]) + b"iPXE"
    options += bytes([255])
    return header + bytes(options)


def parse(packet: bytes) -> dict:
    """The fields of a DHCP reply a PXE client uses."""
    xid = struct.unpack("!I", packet[4:8])[0]
    yiaddr = socket.inet_ntoa(packet[16:20])
    siaddr = socket.inet_ntoa(packet[20:24])
    chaddr = packet[28:34].hex(":")
    file_field = packet[108:236].split(b"\0", 1)[0].decode()
    options: dict[int, bytes] = {}
    i = 240
    while i < len(packet) and packet[i] != 255:
        if packet[i] == 0:
            i += 1
            continue
        code, length = packet[i], packet[i + 1]
        options[code] = packet[i + 2 : i + 2 + length]
        i += 2 + length
    return {
        "xid": xid,
        "type": options.get(53, b"\0")[0],
        "yiaddr": yiaddr,
        "siaddr": siaddr,
        "chaddr": chaddr,
        "file": file_field,
        "bootfile_option": options[67].rstrip(b"\0").decode() if 67 in options else None,
    }


def dhcp(iface: str, mac: str, arch: int, ipxe: bool, plain: bool = False) -> dict:
    """Send one DISCOVER and wait 3 s for its OFFER."""
    xid = int.from_bytes(os.urandom(4), "big")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        sock.bind(("0.0.0.0", 68))
        sock.sendto(discover(mac, arch, ipxe, xid, plain), ("255.255.255.255", 67))
        deadline = time.monotonic() + 3
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                packet, _ = sock.recvfrom(4096)
            except TimeoutError:
                break
            reply = parse(packet)
            if reply["xid"] == xid and reply["chaddr"] == mac and reply["type"] == 2:
                return {"offer": reply}
    return {"offer": None}


def main() -> None:
    """Dispatch the sub-command."""
    what = sys.argv[1]
    if what == "dhcp":
        flags = sys.argv[5:]
        print(
            json.dumps(
                dhcp(sys.argv[2], sys.argv[3], int(sys.argv[4]), "--ipxe" in flags, "--plain" in flags)
            )
        )
    elif what == "tftp":
        import tftpy

        tftpy.TftpClient(sys.argv[2], 69).download(sys.argv[3], sys.argv[4], timeout=5)
    elif what == "http":
        with urllib.request.urlopen(sys.argv[2], timeout=5) as answer, open(sys.argv[3], "wb") as out:
            out.write(answer.read())


if __name__ == "__main__":
    main()
