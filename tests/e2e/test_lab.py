"""kiln-lab with one TCG VM: it PXE-boots the ramdisk through iPXE from the lab's dnsmasq, its agent
looks the node up at the lab's conductor (powered on through the Redfish BMC), and down leaves nothing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from agent.lab import lab as labmod
from agent.lab import net, nodes, procs, rabbit, timeline, vms
from agent.lab.state import State

BOOT_TIMEOUT = 400


@pytest.fixture(scope="module")
def lab(tmp_path_factory, ramdisk):
    """A one-VM lab in a directory of the test's own; taken down afterwards whatever happened."""
    if net.exists():
        pytest.skip(f"a lab is up already (netns {net.NETNS}): kiln-lab down first")
    directory = Path(tmp_path_factory.mktemp("lab")) / "lab"
    state = labmod.up(1, "bios", directory=directory)
    try:
        yield state
    finally:
        labmod.down(directory)


def test_lab_network_routes_nowhere(lab):
    routes = net.in_ns("route", "show").stdout.strip().splitlines()
    assert routes == [f"10.99.0.0/24 dev {net.BRIDGE} proto kernel scope link src {net.DNSMASQ_IP}"]
    assert Path(f"/proc/sys/net/ipv4/conf/{net.HOST_LINK}/forwarding").read_text().strip() == "0"
    assert Path(f"/proc/sys/net/ipv6/conf/{net.HOST_LINK}/disable_ipv6").read_text().strip() == "1"
    links = net.in_ns("-o", "link", "show").stdout
    assert {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()} == {
        "lo",
        net.BRIDGE,
        net.UPLINK,
        "vm0",
    }
    probe = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=3)"  # TEST-NET-1: outside
    out = subprocess.run(
        ["ip", "netns", "exec", net.NETNS, sys.executable, "-c", probe], capture_output=True, text=True
    )
    assert out.returncode != 0 and "Network is unreachable" in out.stderr
    conf = (lab.directory / "dnsmasq" / "dnsmasq.conf").read_text()
    assert "dhcp-option=option:router\n" in conf  # an empty router option: no gateway for the VMs


def test_services_answer_on_the_lab_address(lab):
    with urllib.request.urlopen(lab.info["http_url"] + "/kiln-agent.kernel", timeout=5) as answer:
        assert answer.status == 200
    socket.create_connection((net.HOST_IP, 5672), timeout=5).close()  # RabbitMQ through the forward
    assert rabbit.exists()
    assert all(procs.running(p) for p in lab.data["processes"])


def test_vm_pxe_boots_the_ramdisk_and_the_agent_looks_it_up(lab):
    node = lab.info["nodes"][0]
    enrolled = nodes.enroll(lab, node)
    nodes.inspect(lab, enrolled.id)
    power_on = timeline.wait_power_on(vms.connect(), node["name"])
    nodes.wait_state(lab, enrolled.id, "manageable", BOOT_TIMEOUT)
    phases = timeline.phases(lab.directory, node, enrolled.id, power_on)
    print("boot phases (s after power-on):", json.dumps(phases))
    assert phases["firmware_dhcp"] is not None  # dnsmasq in the namespace answered the firmware
    assert phases["ipxe_script"] is not None and phases["initramfs_fetch"] is not None
    assert phases["lookup"] is not None and phases["lookup"] < BOOT_TIMEOUT
    request = urllib.request.Request(
        f"{lab.info['api_url']}/v1/nodes/{enrolled.id}/inventory",
        headers={"X-OpenStack-Ironic-API-Version": "1.81"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        inventory = json.load(answer)["inventory"]
    # the VM's own hardware, as its agent saw it (Kiln's inventory: nics; Ironic's: interfaces)
    nics = inventory.get("nics") or inventory.get("interfaces") or []
    assert node["mac"] in [nic["mac_address"] for nic in nics]
    assert any(disk["name"] == "/dev/vda" for disk in inventory["disks"])


def test_down_leaves_nothing(lab):
    recorded = list(lab.data["processes"])
    labmod.down(lab.directory)
    assert not any(procs.running(p) for p in recorded)
    assert labmod.leftovers(lab.directory) == []
    assert State.load(lab.directory) is None
    assert not vms.lab_domains(vms.connect())
