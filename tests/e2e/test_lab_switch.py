"""The lab's switch (`kiln-lab up --switch ovs`) without booting a VM: its wiring, LLDP, SSH, isolation.

Each "VM" here is a macvlan on the VM's host link, in a namespace of its own: the same path a
VM's macvtap takes (host end of the veth, the namespace end as an OVS port), so the packets go
through exactly what a lab VM's go through. Checked: every switch port is an access port (the
bridge's own port parked); lldpd's frames reach the VM side with the switch's chassis id and the
port's name; networking-generic-switch's netmiko_ovs_linux driver moves a port over the lab's
sshd; on a tenant VLAN a VM reaches its VLAN's peer and nothing of the provisioning network
(ping, arping, TCP to the HTTP server, the broker forward) nor a VM of another VLAN in the same
subnet, while the same probes answer once the port is back on the provisioning VLAN.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from agent.inventory import lldp
from agent.lab import lab as labmod
from agent.lab import net, switch

FAKE = "kiln-fakevm"
PROBE_IP = "10.99.0.77"
ADDRESSES = {0: "192.168.210.10", 1: "192.168.210.11", 2: "192.168.210.12"}


def _sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A switch lab of three defined (never started) VMs, the third with two NICs; fake VMs on them."""
    for tool in ("ping", "arping", "tcpdump"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is missing: apt-get install -y iputils-ping arping tcpdump")
    if net.exists():
        pytest.skip(f"a lab is up already (netns {net.NETNS}): kiln-lab down first")
    directory = Path(tmp_path_factory.mktemp("labswitch")) / "lab"
    state = labmod.up(
        3, "bios", directory=directory, kiln=False, ramdisk=False, switch_kind="ovs", nics=(1, 1, 2)
    )
    try:
        for i in range(3):
            ns, dev = f"{FAKE}{i}", f"fvm{i}"
            _sh("ip", "netns", "add", ns)
            _sh("ip", "link", "add", dev, "link", net.host_link(i), "address", state.info["nodes"][i]["mac"],
                "type", "macvlan", "mode", "bridge")  # fmt: skip
            _sh("ip", "link", "set", dev, "netns", ns)
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
            _sh("ip", "-n", ns, "link", "set", dev, "up")
            _sh("ip", "-n", ns, "addr", "add", f"{ADDRESSES[i]}/24", "dev", dev)
        yield state
    finally:
        for i in range(3):
            _sh("ip", "netns", "del", f"{FAKE}{i}", check=False)
        labmod.down(directory)


def _in(i: int, *argv: str, timeout: int = 20) -> bool:
    done = subprocess.run(["ip", "netns", "exec", f"{FAKE}{i}", *argv], capture_output=True, timeout=timeout)
    return done.returncode == 0


def _provisioning_reached(i: int) -> list[str]:
    reached = []
    for ip in (net.HOST_IP, net.DNSMASQ_IP):
        if _in(i, "ping", "-c", "2", "-W", "2", ip):
            reached.append(f"ping {ip}")
        if _in(i, "arping", "-c", "2", "-w", "4", "-S", PROBE_IP, "-i", f"fvm{i}", ip):
            reached.append(f"arping {ip}")
    for port in (8080, 5672):
        if _in(i, "timeout", "5", "bash", "-c", f"echo > /dev/tcp/{net.HOST_IP}/{port}"):
            reached.append(f"TCP {net.HOST_IP}:{port}")
    return reached


def test_every_port_is_an_access_port(lab):
    ports = ["vm0", "vm1", "vm2", "vm2n1", net.UPLINK, switch.PROV_PORT]
    assert {p: switch.tag(lab, p) for p in ports} == dict.fromkeys(ports, switch.PROVISIONING_VLAN)
    assert switch.tag(lab, net.BRIDGE) == switch.PARKING_VLAN
    listed = switch.vsctl(lab, "list-ports", net.BRIDGE).split()
    assert sorted(listed) == sorted(ports)
    assert "state DOWN" in net.in_ns("link", "show", net.BRIDGE).stdout


def test_lldp_names_the_switch_and_the_port(lab):
    argv = [
        "ip",
        "netns",
        "exec",
        f"{FAKE}2",
        "tcpdump",
        "-c",
        "1",
        "-i",
        "fvm2",
        "-w",
        "-",
        "ether proto 0x88cc",
    ]
    out = subprocess.run(argv, capture_output=True, timeout=30, check=False)  # lldpd sends every 5 s
    capture = out.stdout
    assert capture, f"no LLDP frame on vm2's NIC: {out.stderr!r}"
    frame = capture[24 + 16 :]  # pcap file header, then one record header
    parsed = lldp.parse_frame(frame)
    assert parsed is not None, capture[:80]
    conn = lldp.local_link_connection(parsed)
    assert conn == {
        "switch_id": lab.info["switch"]["chassis_mac"],
        "port_id": "vm2",
        "switch_info": switch.NAME,
    }


def test_the_driver_moves_a_port_over_ssh(lab):
    from networking_generic_switch import devices

    device = devices.device_manager(_switch_options(lab), switch.NAME)
    device.plug_port_to_network("vm1", 210)
    assert switch.tag(lab, "vm1") == 210


def _switch_options(lab) -> dict[str, str]:
    d = switch.directory(lab)
    return {
        "device_type": "netmiko_ovs_linux",
        "ip": "127.0.0.1",
        "port": str(switch.SSH_PORT),
        "username": "root",
        "key_file": str(d / "id_ed25519"),
        "ngs_port_default_vlan": str(switch.PARKING_VLAN),
    }


def test_a_tenant_vlan_reaches_its_peer_and_nothing_else(lab):
    switch.vsctl(lab, "set", "port", "vm0", "tag=210")
    switch.vsctl(lab, "set", "port", "vm1", "tag=210")
    switch.vsctl(lab, "set", "port", "vm2", "tag=220")
    assert _in(0, "ping", "-c", "2", "-W", "2", ADDRESSES[1]), "no ping between two ports of VLAN 210"
    assert not _in(0, "ping", "-c", "2", "-W", "2", ADDRESSES[2]), "VLAN 210 reached VLAN 220"
    assert not _in(0, "arping", "-c", "2", "-w", "4", "-i", "fvm0", ADDRESSES[2]), "ARP crossed VLANs"
    _sh("ip", "netns", "exec", f"{FAKE}0", "ip", "addr", "add", f"{PROBE_IP}/24", "dev", "fvm0")
    assert _provisioning_reached(0) == []
    switch.vsctl(lab, "set", "port", "vm0", f"tag={switch.PROVISIONING_VLAN}")
    assert len(_provisioning_reached(0)) == 6  # the probes can succeed: on the provisioning VLAN they do
    switch.vsctl(lab, "set", "port", "vm0", "tag=210")
