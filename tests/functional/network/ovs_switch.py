"""A real Open vSwitch (userspace datapath) reached over SSH, in a network namespace of its own.

The switch is what networking-generic-switch's ``netmiko_ovs_linux`` driver drives in Ironic's
multi-tenant CI: an OVS bridge whose access ports get ``tag=VLAN``. Here ovsdb-server,
ovs-vswitchd and sshd run inside a namespace the fixture creates (private run directory, no
kernel OVS module: ``datapath_type=netdev``); the conductor reaches sshd over a veth pair.
``stop()`` removes every process, the namespace and the veth.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
SSHD = "/usr/sbin/sshd"
BRIDGE = "br-kiln"


def available() -> str | None:
    """Why the switch cannot run here, or None."""
    for tool in ("ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovsdb-tool", "ovsdb-client", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (openvswitch-switch, openssh-client)"
    if not os.path.exists(SSHD):
        return "sshd is not installed (openssh-server)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


def _run(*args: str, env: dict | None = None) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (sshd's per-session children and their shells)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class OvsSwitch:
    """One OVS bridge with access ports, sshd in front of it, all in namespace ``self.netns``."""

    def __init__(self, workdir: Path, ports: tuple[str, ...] = ("swp1", "swp2")) -> None:
        self.dir = workdir
        self.ports = ports
        tag = uuid.uuid4().hex[:6]
        self.netns = f"kiln-sw-{tag}"
        self.veth = f"ksw{tag}"
        subnet = random.randint(16, 250)
        self.host_ip = f"10.251.{subnet}.1"
        self.ip = f"10.251.{subnet}.2"
        self.key = workdir / "id_ed25519"
        self.mac = f"52:54:00:5e:{random.randint(0, 255):02x}:{random.randint(0, 255):02x}"
        self._procs: list[subprocess.Popen] = []
        self._monitor: subprocess.Popen | None = None
        self.env = {
            **os.environ,
            "OVS_RUNDIR": str(workdir),
            "OVS_DBDIR": str(workdir),
            "OVS_LOGDIR": str(workdir),
        }

    def _ns(self, *args: str) -> str:
        return _run("ip", "netns", "exec", self.netns, *args, env=self.env)

    def vsctl(self, *args: str) -> str:
        """Run ovs-vsctl against this switch's database."""
        return self._ns("ovs-vsctl", f"--db=unix:{self.dir}/db.sock", "--timeout=10", *args)

    def start(self) -> OvsSwitch:
        """Create the namespace, start OVS and sshd; return self."""
        _run("ip", "netns", "add", self.netns)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        d = self.dir
        _run("ip", "link", "add", f"{self.veth}h", "type", "veth", "peer", "name", f"{self.veth}n")
        _run("ip", "link", "set", f"{self.veth}n", "netns", self.netns)
        _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", f"{self.veth}h")
        _run("ip", "link", "set", f"{self.veth}h", "up")
        self._ns("ip", "link", "set", "lo", "up")
        self._ns("ip", "addr", "add", f"{self.ip}/30", "dev", f"{self.veth}n")
        self._ns("ip", "link", "set", f"{self.veth}n", "up")
        _run("ovsdb-tool", "create", f"{d}/conf.db", SCHEMA)
        common = ["--detach", "--no-chdir"]
        self._ns(
            "ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock", f"--pidfile={d}/ovsdb-server.pid",
            f"--unixctl={d}/ovsdb-server.ctl", f"--log-file={d}/ovsdb-server.log", *common,
        )  # fmt: skip
        self.vsctl("--no-wait", "init")
        self._ns(
            "ovs-vswitchd", f"unix:{d}/db.sock", f"--pidfile={d}/ovs-vswitchd.pid",
            f"--unixctl={d}/ovs-vswitchd.ctl", f"--log-file={d}/ovs-vswitchd.log", *common,
        )  # fmt: skip
        self.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev")
        for port in self.ports:
            self.vsctl("add-port", BRIDGE, port, "--", "set", "interface", port, "type=internal")
        self._monitor = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "ovsdb-client", "monitor", f"unix:{d}/db.sock",
             "Open_vSwitch", "Port", "name,tag", "--format=csv", "--timestamp"],
            stdout=open(d / "port-history.csv", "w"), stderr=subprocess.DEVNULL, env=self.env,
        )  # fmt: skip
        self._start_sshd()

    def _start_sshd(self) -> None:
        d = self.dir
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key"))
        if not self.key.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        shutil.copy(f"{self.key}.pub", d / "authorized_keys")
        (d / "sshd_config").write_text(
            f"ListenAddress {self.ip}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n"
            f"AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
            f"SetEnv OVS_RUNDIR={d} OVS_DBDIR={d}\n"
        )
        os.makedirs("/run/sshd", exist_ok=True)
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.netns,
                SSHD,
                "-D",
                "-f",
                str(d / "sshd_config"),
                "-E",
                str(d / "sshd.log"),
            ]
        )
        self._procs.append(proc)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(d / 'sshd.log').read_text()}")
            done = subprocess.run(
                ["ip", "netns", "exec", self.netns, "ss", "-ltn", f"src {self.ip}:22"],
                capture_output=True,
                text=True,
            )
            if ":22" in done.stdout:
                return
            time.sleep(0.1)
        raise RuntimeError("sshd did not listen within 15 s")

    def stop_sshd(self) -> None:
        """Make the switch unreachable, as a switch lost from the network: sshd and its open sessions go."""
        for proc in self._procs:
            for pid in _descendants(proc.pid):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            proc.terminate()
            proc.wait(10)
        self._procs = []

    def restart_sshd(self) -> None:
        """Bring the switch back."""
        (self.dir / "host_key").unlink(missing_ok=True)
        (self.dir / "host_key.pub").unlink(missing_ok=True)
        self._start_sshd()

    def tag(self, port: str) -> int | None:
        """The access VLAN of ``port`` (None: untagged)."""
        value = self.vsctl("get", "port", port, "tag").strip()
        return None if value in ("[]", "") else int(value)

    def history(self, port: str) -> list[int | None]:
        """Every VLAN ``port`` was on, in order (from ovsdb-client monitor), repeats collapsed.

        networking-generic-switch clears a port's tag before setting the next one (its DELETE_PORT
        commands), so the untagged moments between two VLANs are left out.
        """
        tags: list[int | None] = []
        text = (self.dir / "port-history.csv").read_text()
        for line in text.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if port not in cells:
                continue
            raw = cells[-1]
            if raw in ("[]", ""):
                continue
            value = int(raw)
            if not tags or tags[-1] != value:
                tags.append(value)
        return tags

    def stop(self) -> None:
        """Stop everything and remove the namespace and the veth."""
        self.stop_sshd()
        if self._monitor is not None:
            self._monitor.terminate()
            self._monitor.wait(10)
        for name in ("ovs-vswitchd", "ovsdb-server"):
            pidfile = self.dir / f"{name}.pid"
            if pidfile.exists():
                try:
                    os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass
        time.sleep(0.2)
        subprocess.run(["ip", "link", "del", f"{self.veth}h"], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
