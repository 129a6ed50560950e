"""Debian's lldpd in a peer namespace announces a switch over a veth; the agent's listener parses it.

Needs root (network namespaces, raw sockets) and lldpd (apt-get install lldpd); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("lldpd") or not shutil.which("ip"),
    reason="needs root, ip and lldpd",
)

LISTENER = """
import json, sys, time
from agent.node.lldp import LLDPListener
changes = []
listener = LLDPListener([sys.argv[1]], on_change=changes.append)
listener.start()
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    seen = listener.snapshot().get(sys.argv[1], {})
    if seen.get("switch_system_name") == "leaf-a12" and seen.get("switch_port_vlans"):
        break
    time.sleep(0.1)
inventory = listener.merge({"lldp": {"eth9": {"raw": []}}})
listener.stop()
print(json.dumps({"inventory_lldp": inventory["lldp"], "changes": changes}))
"""


def ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    subprocess.run(cmd, check=True, capture_output=True)


def lldpcli(ns: str, sock: str, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "lldpcli", "-u", sock, *args], check=True, capture_output=True)


@pytest.fixture
def switch_and_node():
    """Namespaces sw-X (lldpd on veth swp7) and node-X (veth eth0); removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    sw, node = f"kiln-sw-{tag}", f"kiln-node-{tag}"
    sockdir = tempfile.mkdtemp(prefix="kiln-lldpd-", dir="/tmp")
    os.chmod(sockdir, 0o755)  # lldpcli drops to the _lldpd user: pytest's 0700 tmp_path is out of its reach
    sock = os.path.join(sockdir, "lldpd.sock")
    lldpd = None
    try:
        subprocess.run(["ip", "netns", "add", sw], check=True)
        subprocess.run(["ip", "netns", "add", node], check=True)
        ip("link", "add", f"s{tag}", "type", "veth", "peer", "name", f"n{tag}")
        ip("link", "set", f"s{tag}", "netns", sw, "name", "swp7")
        ip("link", "set", f"n{tag}", "netns", node, "name", "eth0")
        for dev in ("lo", "swp7"):
            ip("link", "set", dev, "up", ns=sw)
        ip("link", "set", "eth0", "mtu", "9000", "up", ns=node)
        ip("link", "set", "swp7", "mtu", "9000", ns=sw)
        lldpd = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                sw,
                "lldpd",
                "-d",
                "-u",
                sock,
                "-I",
                "swp7",
                "-S",
                "Kiln test switch OS 1.0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):  # wait until lldpd answers on its control socket
            ok = subprocess.run(["ip", "netns", "exec", sw, "lldpcli", "-u", sock, "show", "configuration"],
                                capture_output=True).returncode == 0  # fmt: skip
            if ok:
                break
            time.sleep(0.1)
        lldpcli(sw, sock, "configure", "system", "hostname", "leaf-a12")
        lldpcli(sw, sock, "configure", "ports", "swp7", "lldp", "portidsubtype", "local", "Ethernet1/7",
                "description", "to gpu-node-17 eth0")  # fmt: skip
        # 802.1 VLAN TLVs (PVID 100, VLAN 100 "storage") and the 802.3 max frame size as custom TLVs:
        # lldpd announces VLANs only for VLAN interfaces, which need the 8021q module.
        for subtype, info in (("1", "00,64"), ("3", "00,64,07,73,74,6f,72,61,67,65")):
            lldpcli(sw, sock, "configure", "ports", "swp7", "lldp", "custom-tlv", "add", "oui", "00,80,c2",
                    "subtype", subtype, "oui-info", info)  # fmt: skip
        lldpcli(sw, sock, "configure", "ports", "swp7", "lldp", "custom-tlv", "add", "oui", "00,12,0f",
                "subtype", "4", "oui-info", "23,28")  # fmt: skip
        lldpcli(sw, sock, "configure", "lldp", "tx-interval", "1")
        yield sw, node
    finally:
        if lldpd is not None:
            lldpd.terminate()
            lldpd.wait(10)
        subprocess.run(["ip", "netns", "del", sw], capture_output=True)
        subprocess.run(["ip", "netns", "del", node], capture_output=True)
        shutil.rmtree(sockdir, ignore_errors=True)


def test_listener_parses_lldpd(switch_and_node):
    sw, node = switch_and_node
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    proc = subprocess.run(
        ["ip", "netns", "exec", node, sys.executable, "-c", LISTENER, "eth0"],
        capture_output=True, text=True, timeout=60, cwd=repo, check=True,
    )  # fmt: skip
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    got = out["inventory_lldp"]["eth0"]
    assert got["switch_system_name"] == "leaf-a12"
    assert got["switch_system_description"] == "Kiln test switch OS 1.0"
    assert got["switch_port_id"] == "Ethernet1/7"
    assert got["switch_port_id_subtype"] == "local"
    assert got["switch_port_description"] == "to gpu-node-17 eth0"
    assert got["switch_chassis_id_subtype"] == "mac_address"
    assert got["switch_chassis_id"] == got["source_mac"]
    assert got["switch_port_vlans"] == [{"id": 100, "name": "storage"}]
    assert got["switch_port_untagged_vlan_id"] == 100
    assert got["switch_port_mtu"] == 9000
    assert got["switch_port_link_aggregation_support"] is True
    assert got["switch_port_link_aggregation_enabled"] is False
    assert [1, "04" + got["switch_chassis_id"].replace(":", "")] == got["raw"][0]
    assert "received_at" not in got
    assert out["inventory_lldp"]["eth9"] == {"raw": []}  # links not heard keep what the inventory had
    assert "eth0" in out["changes"]
