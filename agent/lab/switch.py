"""The lab's switch (``kiln-lab up --switch ovs``): Open vSwitch in the lab namespace, driven over SSH.

ovsdb-server and ovs-vswitchd run inside the kiln-lab namespace with the userspace datapath
(``datapath_type=netdev``: the kernel has no OVS module). Every port is an access port with a
``tag``: the provisioning side (``prov``, dnsmasq's 10.99.0.2, and ``uplink`` to the host's
10.99.0.1) sits on PROVISIONING_VLAN, each VM NIC starts there too, and the bridge's own local
port is parked and down. An OVS port with no tag is a trunk of every VLAN, so none is left so.
The namespace's kernel sees every frame of the OVS ports as well (AF_PACKET only taps them): it
answers ARP only for addresses on the receiving link and drops what fails the reverse path, so a
tenant's frame on a VM port is never answered by the lab's own addresses.

sshd (on 127.0.0.1:SSH_PORT, root with a key the lab makes) is what networking-generic-switch's
``netmiko_ovs_linux`` driver logs in to; its sessions find the lab's OVS database through
OVS_RUNDIR. lldpd sends LLDP on the VM ports (port id: the OVS port name; chassis id: a MAC),
as a real switch's ports do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from agent.lab import net, procs
from agent.lab.state import State

NAME = "kiln-lab-ovs"
PROV_PORT = "prov"
PROVISIONING_VLAN = 100
PARKING_VLAN = 4000
SSH_PORT = 8022
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
SSHD = "/usr/sbin/sshd"
LLDP_TX_INTERVAL = 5
# lldpcli drops to the _lldpd user, which must reach lldpd's socket: not under a root-only directory
LLDPD_RUN = Path("/run/kiln-lab")
TOOLS = (("ovsdb-server", "openvswitch-switch"), ("ovs-vswitchd", "openvswitch-switch"),
         ("ovs-vsctl", "openvswitch-switch"), ("lldpd", "lldpd"), ("ssh-keygen", "openssh-client"),
         ("ethtool", "ethtool"))  # fmt: skip


def directory(state: State) -> Path:
    """Where the switch keeps its database, sockets, keys and logs."""
    return state.directory / "switch"


def env(state: State) -> dict[str, str]:
    """The environment in which ovs-vsctl/ovs-appctl find the lab's switch."""
    d = str(directory(state))
    return {**os.environ, "OVS_RUNDIR": d, "OVS_DBDIR": d, "OVS_LOGDIR": d}


def _run(argv: list[str], state: State, what: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env(state), timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the lab's switch: {what} failed: {' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def vsctl(state: State, *args: str) -> str:
    """ovs-vsctl against the lab's switch database."""
    db = f"unix:{directory(state)}/db.sock"
    return _run(["ovs-vsctl", f"--db={db}", "--timeout=10", *args], state, "ovs-vsctl " + " ".join(args))


def tag(state: State, port: str) -> int | None:
    """The access VLAN of ``port`` (None: no tag, a trunk of every VLAN)."""
    value = vsctl(state, "get", "port", port, "tag").strip()
    return None if value in ("[]", "") else int(value)


def check_host() -> None:
    """RuntimeError naming the Debian package of a missing tool."""
    for tool, package in TOOLS:
        if not shutil.which(tool):
            raise RuntimeError(
                f"{tool} is not installed (kiln-lab --switch ovs): apt-get install -y {package}"
            )
    if not os.path.exists(SSHD):
        raise RuntimeError(f"{SSHD} is missing (kiln-lab --switch ovs): apt-get install -y openssh-server")


def _sysctl_ns(key: str, value: str) -> None:
    subprocess.run(["ip", "netns", "exec", net.NETNS, "sysctl", "-q", "-w", f"{key}={value}"], check=True)


def offloads_off(dev: str, netns: bool = False) -> None:
    """No checksum/segmentation offload on ``dev``: OVS's userspace datapath forwards what it reads as is."""
    argv = ["ethtool", "-K", dev, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off"]
    if netns:
        argv = ["ip", "netns", "exec", net.NETNS, *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 76, 78, 80):  # 76/78/80: some of these cannot be changed on this link
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")


def start(state: State) -> None:
    """ovsdb-server, ovs-vswitchd and the bridge with its provisioning ports (the namespace exists)."""
    d = directory(state)
    d.mkdir(parents=True, exist_ok=True)
    # the namespace's own IP stack: answer ARP only on the link that has the address, strict
    # reverse-path filter, no IPv6, no forwarding
    for key, value in (("net.ipv4.conf.all.arp_ignore", "1"), ("net.ipv4.conf.default.arp_ignore", "1"),
                       ("net.ipv4.conf.all.rp_filter", "1"), ("net.ipv4.conf.default.rp_filter", "1"),
                       ("net.ipv6.conf.all.disable_ipv6", "1"), ("net.ipv6.conf.default.disable_ipv6", "1"),
                       ("net.ipv4.ip_forward", "0")):  # fmt: skip
        _sysctl_ns(key, value)
    _run(["ovsdb-tool", "create", f"{d}/conf.db", SCHEMA], state, "ovsdb-tool create")
    ns = ["ip", "netns", "exec", net.NETNS]
    server = procs.start(state, "ovsdb-server", [*ns, "ovsdb-server", f"{d}/conf.db",
                         f"--remote=punix:{d}/db.sock", f"--pidfile={d}/ovsdb-server.pid",
                         f"--unixctl={d}/ovsdb-server.ctl", "--no-chdir"], env=env(state))  # fmt: skip
    procs.wait_until("ovsdb-server", lambda: (d / "db.sock").exists(), server, d / "ovsdb-server.log", 20)
    vsctl(state, "--no-wait", "init")
    switchd = procs.start(state, "ovs-vswitchd", [*ns, "ovs-vswitchd", f"unix:{d}/db.sock",
                          f"--pidfile={d}/ovs-vswitchd.pid", f"--unixctl={d}/ovs-vswitchd.ctl", "--no-chdir"],
                          env=env(state))  # fmt: skip
    procs.wait_until(
        "ovs-vswitchd", lambda: (d / "ovs-vswitchd.ctl").exists(), switchd, d / "ovs-vswitchd.log", 30
    )
    br = net.BRIDGE
    vsctl(state, "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev",
          "--", "set", "port", br, f"tag={PARKING_VLAN}")  # fmt: skip
    vsctl(state, "add-port", br, PROV_PORT, "--", "set", "interface", PROV_PORT, "type=internal",
          "--", "set", "port", PROV_PORT, f"tag={PROVISIONING_VLAN}")  # fmt: skip
    deadline = time.monotonic() + 20
    while net.in_ns("link", "show", PROV_PORT, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the lab's switch made no {PROV_PORT} link within 20 s; see {d}")
        time.sleep(0.2)
    net.in_ns("link", "set", br, "down")  # the bridge's local port: parked, no address
    net.in_ns("addr", "add", f"{net.DNSMASQ_IP}/{net.PREFIX}", "dev", PROV_PORT)
    net.in_ns("link", "set", PROV_PORT, "up")
    add_port(state, net.UPLINK, PROVISIONING_VLAN)


def add_port(state: State, dev: str, vlan: int = PROVISIONING_VLAN) -> None:
    """Make the namespace link ``dev`` an access port on ``vlan`` (offloads off)."""
    offloads_off(dev, netns=True)
    vsctl(state, "add-port", net.BRIDGE, dev, "--", "set", "port", dev, f"tag={vlan}", "vlan_mode=access")


def start_sshd(state: State, chassis_mac: str) -> dict[str, str]:
    """sshd on 127.0.0.1:SSH_PORT for the lab's key; the [genericswitch:NAME] options (LLDP's chassis)."""
    d = directory(state)
    key = d / "id_ed25519"
    for path in (d / "host_key", key):
        _run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kiln-lab", "-f", str(path)],
            state,
            "ssh-keygen",
        )
    (d / "authorized_keys").write_text((d / "id_ed25519.pub").read_text())
    (d / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1:{SSH_PORT}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nAllowUsers root\nStrictModes no\nUsePAM no\n"
        f"SetEnv OVS_RUNDIR={d} OVS_DBDIR={d} OVS_LOGDIR={d}\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    proc = procs.start(state, "sshd", [SSHD, "-D", "-e", "-f", str(d / "sshd_config")])

    def listening() -> bool:
        out = subprocess.run(["ss", "-ltnH", f"src 127.0.0.1:{SSH_PORT}"], capture_output=True, text=True)
        return str(SSH_PORT) in out.stdout

    procs.wait_until("sshd", listening, proc, state.directory / "logs" / "sshd.log", 15)
    return {
        "device_type": "netmiko_ovs_linux",
        "ip": "127.0.0.1",
        "port": str(SSH_PORT),
        "username": "root",
        "key_file": str(key),
        "ngs_mac_address": chassis_mac,
        "ngs_port_default_vlan": str(PARKING_VLAN),
        "ngs_ovs_bridge": net.BRIDGE,
        "ngs_ssh_reuse_connection": "true",
    }


def remove_run_dir() -> list[str]:
    """Remove lldpd's socket directory; what was removed."""
    if LLDPD_RUN.exists():
        shutil.rmtree(LLDPD_RUN, ignore_errors=True)
        return [f"directory {LLDPD_RUN}"]
    return []


def start_lldpd(state: State, ports: list[str]) -> str:
    """lldpd in the namespace sending LLDP on ``ports`` (port id: the port's name); its chassis MAC."""
    LLDPD_RUN.mkdir(mode=0o755, exist_ok=True)
    sock = LLDPD_RUN / "lldpd.socket"
    sock.unlink(missing_ok=True)
    argv = ["ip", "netns", "exec", net.NETNS, "lldpd", "-d", "-u", str(sock), "-I", ",".join(ports)]
    proc = procs.start(state, "lldpd", argv)
    procs.wait_until("lldpd", sock.exists, proc, state.directory / "logs" / "lldpd.log", 15)
    for command in (f"configure lldp tx-interval {LLDP_TX_INTERVAL}", "configure lldp portidsubtype ifname",
                    f"configure system hostname {NAME}"):  # fmt: skip
        _run(["lldpcli", "-u", str(sock), *command.split()], state, f"lldpcli {command}")
    return chassis_mac(state)


def chassis_mac(state: State) -> str:
    """The MAC lldpd announces as its chassis id (the switch's ngs_mac_address)."""
    argv = ["lldpcli", "-u", str(LLDPD_RUN / "lldpd.socket"), "show", "chassis", "-f", "json"]
    deadline = time.monotonic() + 15
    while True:
        shown = json.loads(_run(argv, state, "lldpcli show chassis"))
        chassis = shown.get("local-chassis", {}).get("chassis", {})
        ident = next(iter(chassis.values()), {}).get("id", {}) if chassis else {}
        if ident.get("type") == "mac":
            return ident["value"]
        if time.monotonic() > deadline:
            raise RuntimeError(f"lldpd announces no MAC chassis id: {shown}")
        time.sleep(0.5)
