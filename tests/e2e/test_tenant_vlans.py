"""Tenant isolation on the lab's switch, with real packets from inside three TCG VMs.

`kiln-lab up --switch ovs --nics 1,1,2`: the VMs sit behind a userspace Open vSwitch that the
conductor drives over SSH with networking-generic-switch's netmiko_ovs_linux driver, and lldpd
announces the switch ports. vm0 and vm2 belong to project A (vm2 has two NICs in a portgroup),
vm1 to project B. Checked: inspection fills every port's local_link_connection from real LLDP;
the ports sit on the provisioning VLAN while deploying and on the VIF's VLAN once active; vm0
and vm2 (over its bond, from network_data.json through cloud-init) ping each other; vm0 reaches
neither the provisioning network (dnsmasq, the HTTP server, the broker forward, kiln-api: ping,
arping and TCP, with the same probes answered once its port is put back on the provisioning VLAN
by hand) nor vm1, which has an address in the same subnet on project B's VLAN; after undeploy
the ports go back to the cleaning VLAN and cleaning completes. Commands run in the guests
through their serial consoles.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agent.lab import lab as labmod
from agent.lab import net, switch
from agent.lab.console import Console
from tests.e2e.test_lifecycle import WAIT, Operator, _wait_os_up

PROJECT_A = "6b1c0d1e9f2a4c3b8d7e6f5a4b3c2d1e"
PROJECT_B = "0f9e8d7c6b5a49382716a5b4c3d2e1f0"
VLAN_A, VLAN_B = 210, 220
# vm1 (project B) shares project A's subnet on purpose: only the VLANs keep them apart
ADDRESSES = {0: "192.168.210.10", 1: "192.168.210.12", 2: "192.168.210.11"}
OWNERS = {0: PROJECT_A, 1: PROJECT_B, 2: PROJECT_A}
NETWORKS = {0: "tenant-a", 1: "tenant-b", 2: "tenant-a"}
PROBE_IP = "10.99.0.77"  # what a tenant would try: an address of its own on the provisioning subnet
SERVICES = (
    (net.HOST_IP, 8080, "the HTTP server (boot files, images)"),
    (net.HOST_IP, 5672, "the broker (RabbitMQ forward)"),
    (net.HOST_IP, 6385, "kiln-api"),
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, ramdisk, test_image):
    """Three VMs behind the lab's OVS switch (NICs 1, 1, 2), tenant networks A and B declared."""
    if net.exists():
        pytest.skip(f"a lab is up already (netns {net.NETNS}): kiln-lab down first")
    directory = Path(tmp_path_factory.mktemp("tenant")) / "lab"
    conf = {
        "conductor": {"deploy_callback_timeout": 600, "sync_power_state_interval": 0},
        "network:tenant-a": {"vlan_id": VLAN_A, "project": PROJECT_A},
        "network:tenant-b": {"vlan_id": VLAN_B, "project": PROJECT_B},
    }
    state = labmod.up(3, "bios", directory=directory, conf=conf, switch_kind="ovs", nics=(1, 1, 2))
    history = subprocess.Popen(
        ["ovsdb-client", "monitor", f"unix:{switch.directory(state)}/db.sock", "Open_vSwitch", "Port",
         "name,tag", "--format=csv"],
        stdout=(directory / "port-history.csv").open("w"), stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for path in (test_image.image, test_image.image.with_name(test_image.image.name + ".sha256")):
            shutil.copyfile(path, directory / "http" / path.name)
        yield state
    finally:
        history.terminate()
        history.wait(10)
        labmod.down(directory)


def _history(state, port: str) -> list[int]:
    """Every VLAN ``port`` was on, in order, repeats and tag-less moments (mid-move) left out."""
    tags: list[int] = []
    for line in (state.directory / "port-history.csv").read_text().splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if port in cells and cells[-1] not in ("[]", "") and cells[-1].isdigit():
            if not tags or tags[-1] != int(cells[-1]):
                tags.append(int(cells[-1]))
    return tags


def _network_data(index: int, macs: list[str]) -> dict:
    if len(macs) == 1:
        links = [{"id": "eth0", "type": "phy", "ethernet_mac_address": macs[0]}]
    else:
        links = [{"id": f"eth{n}", "type": "phy", "ethernet_mac_address": mac} for n, mac in enumerate(macs)]
        links.append({"id": "bond0", "type": "bond", "bond_links": ["eth0", "eth1"],
                      "bond_mode": "active-backup", "bond_miimon": 100,
                      "ethernet_mac_address": macs[0]})  # fmt: skip
    network = {"id": "tenant", "link": links[-1]["id"], "type": "ipv4", "ip_address": ADDRESSES[index],
               "netmask": "255.255.255.0", "network_id": NETWORKS[index]}  # fmt: skip
    return {"links": links, "networks": [network], "services": []}


def _enroll(bm: Operator, lab, index: int) -> str:
    node, info = lab.info["nodes"][index], lab.info
    name = f"tv-{index}"
    bm("node", "create", "--driver", "redfish", "--name", name, "--owner", OWNERS[index],
       "--boot-interface", "ipxe", "--inspect-interface", "agent", "--deploy-interface", "direct",
       "--network-interface", "multitenant",
       "--driver-info", f"redfish_address={node['redfish_address']}",
       "--driver-info", f"redfish_system_id={node['redfish_system_id']}",
       "--driver-info", f"redfish_username={info['bmc_username']}",
       "--driver-info", f"redfish_password={info['bmc_password']}")  # fmt: skip
    uuid = bm.show(name)["uuid"]
    group = []
    if len(node["macs"]) > 1:
        args = ["--name", f"{name}-bond", "--mode", "active-backup", "--property", "miimon=100"]
        pg = bm("port", "group", "create", "--node", uuid, *args, "-f", "value", "-c", "uuid").strip()
        group = ["--port-group", pg]
    for mac in node["macs"]:
        bm("port", "create", mac, "--node", uuid, "--pxe-enabled", "true", *group)
    return name


def _ports(bm: Operator, name: str) -> dict[str, dict]:
    rows = json.loads(bm("port", "list", "--node", name, "--long", "-f", "json"))
    rows = [{k.lower().replace(" ", "_"): v for k, v in row.items()} for row in rows]
    return {row["address"]: row["local_link_connection"] for row in rows}


def _prepare(bm: Operator, lab, index: int) -> None:
    """Enroll, manage, inspect (LLDP fills local_link_connection), provide, attach the VIF, deploy."""
    node, sw = lab.info["nodes"][index], lab.info["switch"]
    name = _enroll(bm, lab, index)
    bm("node", "manage", name, "--wait", "120")
    bm("node", "inspect", name, "--wait", str(WAIT))
    links = _ports(bm, name)
    for mac, port in zip(node["macs"], node["switch_ports"], strict=True):
        assert links[mac] == {"switch_id": sw["chassis_mac"], "port_id": port, "switch_info": sw["name"]}, (
            links
        )
    bm("node", "provide", name, "--wait", str(WAIT))
    bm("node", "vif", "attach", name, NETWORKS[index])
    http = lab.info["http_url"]
    digest = (lab.directory / "http" / "kiln-test-os.qcow2.sha256").read_text().split()[0]
    bm("node", "set", name, "--instance-info", f"image_source={http}/kiln-test-os.qcow2",
       "--instance-info", f"image_checksum={digest}",
       "--instance-info", "image_disk_format=qcow2")  # fmt: skip
    drive = {
        "meta_data": {"hostname": f"tenant-vm{index}"},
        "network_data": _network_data(index, node["macs"]),
    }
    bm("node", "deploy", name, "--config-drive", json.dumps(drive), "--wait", str(WAIT))
    _wait_os_up(node["console"], 0)


def _reaches(console: Console, command: str) -> bool:
    rc, _out = console.run(command, timeout=30)
    return rc == 0


def _provisioning_reached(console: Console) -> list[str]:
    """What of the provisioning network answers the guest: ping, arping and TCP probes."""
    reached = []
    for ip in (net.HOST_IP, net.DNSMASQ_IP):
        if _reaches(console, f"ping -c 2 -W 2 {ip}"):
            reached.append(f"ping {ip}")
        if _reaches(console, f"arping -c 2 -w 4 -S {PROBE_IP} -i eth0 {ip}"):
            reached.append(f"arping {ip}")
    for ip, port, what in SERVICES:
        if _reaches(console, f"timeout 5 bash -c 'echo > /dev/tcp/{ip}/{port}'"):
            reached.append(f"TCP {ip}:{port} ({what})")
    return reached


def test_tenant_vlans(lab):
    bm = Operator(lab.info["api_url"])
    nodes = lab.info["nodes"]
    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        errors = [run.exception() for run in [pool.submit(_prepare, bm, lab, i) for i in range(3)]]
    for error in errors:
        if error is not None:
            raise error
    deployed_s = time.monotonic() - started
    tenant_vlan = {0: VLAN_A, 1: VLAN_B, 2: VLAN_A}
    for index, node in enumerate(nodes):
        for port in node["switch_ports"]:
            assert switch.tag(lab, port) == tenant_vlan[index], port
            history = _history(lab, port)
            # provisioning while deploying (then parked while the VM is off), the tenant VLAN once active
            assert history[-1] == tenant_vlan[index] and switch.PROVISIONING_VLAN in history[-3:-1], (
                port,
                history,
            )

    with Console(nodes[0]["console_socket"], "vm0") as vm0, Console(nodes[2]["console_socket"], "vm2") as vm2:
        vm0.login()
        vm2.login()
        # the bond from network_data.json, applied by cloud-init, carries vm2's address
        rc, bonding = vm2.run("cat /proc/net/bonding/bond0")
        assert rc == 0 and "active-backup" in bonding and bonding.count("Slave Interface") == 2, bonding
        rc, addresses = vm2.run("ip -4 -o addr show dev bond0")
        assert ADDRESSES[2] in addresses, addresses
        # same tenant: vm0 and vm2 reach each other
        assert _reaches(vm0, f"ping -c 3 -W 2 {ADDRESSES[2]}"), "vm0 cannot reach vm2 (same tenant)"
        assert _reaches(vm2, f"ping -c 3 -W 2 {ADDRESSES[0]}"), "vm2 cannot reach vm0 (same tenant)"
        # another tenant: vm1, same subnet, other VLAN
        assert not _reaches(vm0, f"ping -c 3 -W 2 {ADDRESSES[1]}"), "vm0 reached vm1 (project B)"
        assert not _reaches(vm0, f"arping -c 2 -w 4 -i eth0 {ADDRESSES[1]}"), "vm0 got ARP from vm1"
        # the provisioning network: an address on its subnet, then every service of it
        assert vm0.run(f"ip addr add {PROBE_IP}/24 dev eth0")[0] == 0
        reached = _provisioning_reached(vm0)
        assert reached == [], f"a tenant VM reached the provisioning network: {reached}"
        # the same probes do answer on the provisioning VLAN: they could have failed
        switch.vsctl(lab, "set", "port", "vm0", f"tag={switch.PROVISIONING_VLAN}")
        try:
            control = _provisioning_reached(vm0)
        finally:
            switch.vsctl(lab, "set", "port", "vm0", f"tag={VLAN_A}")
        assert len(control) == 7, f"the probes only reached {control} on the provisioning VLAN"
        vm0.run(f"ip addr del {PROBE_IP}/24 dev eth0")

    undeploy = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        runs = [pool.submit(bm, "node", "undeploy", f"tv-{i}", "--wait", str(WAIT)) for i in range(3)]
        for run in runs:
            run.result()
    for index, node in enumerate(nodes):
        assert bm.show(f"tv-{index}")["provision_state"] == "available"
        for port in node["switch_ports"]:
            history = _history(lab, port)
            # undeploy: off the tenant VLAN, cleaned on the cleaning VLAN, then parked
            after = history[len(history) - 1 - history[::-1].index(tenant_vlan[index]) :]
            assert switch.PROVISIONING_VLAN in after and after[-1] == switch.PARKING_VLAN, (port, history)
    print(f"tenant VLANs: 3 VMs deployed in {deployed_s:.0f} s, undeployed and cleaned in "
          f"{time.monotonic() - undeploy:.0f} s, {time.monotonic() - started:.0f} s in all")  # fmt: skip
