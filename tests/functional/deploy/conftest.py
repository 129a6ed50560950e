"""kiln-conductor, kiln-api, sushy-tools' Redfish emulator and simulated nodes, as real processes.

The emulator (HTTP basic auth, as a BMC has) calls our notification URL on every change; when it
powers on with PXE as boot device, the simulated node does what its firmware and iPXE would: it
takes the kernel command line from the iPXE script the conductor wrote for its MAC into its
/proc/cmdline and starts the real kiln-agent (``python -m agent.cmd.agent``) on a copy of the vm
fixture tree, its /dev/vdb a file ([agent]disk_map). The agent's own config has no transport URL:
it fetches one from kiln.config_url. When the node powers off, the agent process stops.
RabbitMQ on 127.0.0.1:5672.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import bcrypt
import openstack.config
import pytest
from openstack import connection

from tests.functional.procs import RABBIT_URL

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "fixtures" / "sysfs" / "vm"
SYSTEM_UUID = "6c0b9a3e-4f1d-4b7a-9e2c-5d8f0a1b2c3d"
MAC = "52:54:00:12:34:56"
MIB = 1024 * 1024
DISK_SIZE = 128 * MIB
CALLBACK_TIMEOUT = 25
BMC_USER = "admin"
BMC_PASSWORD = "s3cret-bmc"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rabbit_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _drivers(url: str) -> list[str]:
    req = urllib.request.Request(url + "/v1/drivers", headers={"X-OpenStack-Ironic-API-Version": "1.80"})
    try:
        with urllib.request.urlopen(req, timeout=2) as answer:
            return [d["name"] for d in json.load(answer)["drivers"]]
    except OSError:
        return []


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def ipxe_kernel_cmdline(script: str, mac: str) -> str:
    """The kernel command line iPXE boots with from the conductor's script (${mac:hexhyp} expanded)."""
    for line in script.splitlines():
        words = line.split()
        if words[:1] == ["kernel"]:
            args = words[words.index("--timeout") + 3 :] if "--timeout" in words else words[2:]
            args = args[: args.index("||")] if "||" in args else args
            return " ".join(args).replace("${mac:hexhyp}", mac.replace(":", "-"))
    raise AssertionError(f"no kernel line in the iPXE script:\n{script}")


class SimNode:
    """One simulated machine: its agent process follows the emulator's power and boot device."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "sysfs"
        shutil.copytree(FIXTURE, self.root, symlinks=True)
        self.disk = tmp / "vdb.img"
        with open(self.disk, "wb") as fh:
            fh.truncate(DISK_SIZE)
        self.conf = tmp / "agent.conf"
        self.conf.write_text(  # no transport_url: the agent finds it through its kernel command line
            f"[agent]\nroot = {self.root}\nstate_dir = {tmp / 'agent-state'}\nwatch = false\n"
            f"disk_map = /dev/vdb:{self.disk}\nbackoff_initial = 0.2\nbackoff_max = 2\n"
            f"[inventory]\nuse_nvml = false\n"
        )
        self.script = tmp / "httpboot" / f"{MAC.replace(':', '-')}.ipxe"
        self.agent: subprocess.Popen | None = None
        self.agent_runs = 0
        self.hold_agent = False  # True: power-on does not start the agent (it "never calls back")
        self.on_agent_boot = None  # a callable run (in a thread) instead of starting the agent
        self.cmdlines: list[str] = []
        self.events: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._log = open(tmp / "agent.log", "a")  # noqa: SIM115 - closed in close()

    def _firmware_boot(self) -> bool:
        """What PXE firmware and iPXE do: fetch the node's script; its kernel line becomes /proc/cmdline."""
        if not self.script.exists():
            self.events.append(("no-script", str(self.script)))
            return False
        cmdline = ipxe_kernel_cmdline(self.script.read_text(), MAC)
        (self.root / "proc" / "cmdline").write_text(cmdline + "\n")
        self.cmdlines.append(cmdline)
        return True

    def on_change(self, system: dict) -> None:
        """The emulator's notification: start or stop the agent to match power and boot device."""
        power = system.get("power_state")
        device = system.get("boot_device", "Hdd")
        with self._lock:
            self.events.append((power, device))
            running = self.agent is not None and self.agent.poll() is None
            if power == "On" and device == "Pxe" and self.on_agent_boot is not None:
                threading.Thread(target=self.on_agent_boot, daemon=True).start()
            elif power == "On" and device == "Pxe" and not running and not self.hold_agent:
                if not self._firmware_boot():
                    return
                self.agent = subprocess.Popen(
                    [sys.executable, "-m", "agent.cmd.agent", "--config-file", str(self.conf)],
                    cwd=REPO,
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                    stdout=self._log,
                    stderr=subprocess.STDOUT,
                )
                self.agent_runs += 1
            elif power != "On" and running:
                _stop(self.agent)
                self.agent = None

    def stop_agent(self) -> None:
        """Stop the agent as a power-off would (for a BMC that could not be told)."""
        with self._lock:
            _stop(self.agent)
            self.agent = None

    def agent_running(self) -> bool:
        """Whether the node's agent process runs now."""
        return self.agent is not None and self.agent.poll() is None

    def close(self) -> None:
        """Stop the agent."""
        with self._lock:
            _stop(self.agent)
        self._log.close()


class _Notify(http.server.BaseHTTPRequestHandler):
    node: SimNode

    def do_PUT(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.node.on_change(json.loads(body or b"{}"))  # type: ignore[attr-defined]
        try:
            self.send_response(204)
            self.end_headers()
        except OSError:  # the emulator was stopped meanwhile (a power failure test)
            pass

    def log_message(self, *args) -> None:
        pass


class Emulator:
    """sushy-tools' Redfish emulator with one fake system behind HTTP basic auth; restartable."""

    def __init__(self, tmp: Path, notify_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        htpasswd = tmp / "bmc.htpasswd"
        htpasswd.write_text(f"{BMC_USER}:{bcrypt.hashpw(BMC_PASSWORD.encode(), bcrypt.gensalt()).decode()}\n")
        self.conf = tmp / "emulator.conf"
        self.conf.write_text(
            "SUSHY_EMULATOR_FAKE_SYSTEMS = "
            + repr(
                [
                    {
                        "uuid": SYSTEM_UUID,
                        "name": "sim-node",
                        "power_state": "Off",
                        "external_notifier": True,
                        "nics": [{"mac": MAC, "ip": "192.0.2.10"}],
                    }
                ]
            )
            + f"\nEXTERNAL_NOTIFICATION_URL = {notify_url!r}\n"
            + f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}\n"
            # Its own state: sushy-tools keeps every --fake system in one SQLite file under /tmp by
            # default, so emulators of other tests (same system UUID) would share power and boot device.
            + f"SUSHY_EMULATOR_STATE_DIR = {str(tmp / 'bmc-state')!r}\n"
        )
        self.log = tmp / "emulator.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start it (its fake system starts powered off) and wait until it answers."""
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [
                    "sushy-emulator",
                    "--fake",
                    "-i",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "--config",
                    str(self.conf),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_http(f"{self.url}/redfish/v1/", self.proc)  # the service root needs no credentials

    def stop(self) -> None:
        """Stop it: the BMC stops answering."""
        _stop(self.proc)

    def system(self, user: str = BMC_USER, password: str = BMC_PASSWORD) -> dict:
        """The fake system as the BMC reports it (raises urllib's HTTPError on refused credentials)."""
        req = urllib.request.Request(f"{self.url}/redfish/v1/Systems/{SYSTEM_UUID}")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(req, timeout=5) as answer:
            return json.load(answer)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Everything running; yields a dict with the API URL, the emulator, the node and the image server."""
    if not _rabbit_up():
        pytest.skip("RabbitMQ is not listening on 127.0.0.1:5672 (rabbitmq-server -detached)")
    if shutil.which("sushy-emulator") is None:
        pytest.skip("sushy-emulator (sushy-tools) is not installed")
    tmp = tmp_path_factory.mktemp("deploy")
    exchange = f"kiln-deploy-{uuid.uuid4().hex[:8]}"
    procs: list[subprocess.Popen] = []
    servers: list[http.server.HTTPServer] = []
    node = SimNode(tmp)
    emulator: Emulator | None = None
    try:
        notify = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Notify)
        notify.node = node  # type: ignore[attr-defined]
        servers.append(notify)
        threading.Thread(target=notify.serve_forever, daemon=True).start()

        images = tmp / "images"
        images.mkdir()
        image_http = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(images))
        )
        servers.append(image_http)
        threading.Thread(target=image_http.serve_forever, daemon=True).start()
        image_url = f"http://127.0.0.1:{image_http.server_address[1]}"
        # What [pxe]agent_config_url serves the agents: how to reach the conductors.
        (images / "agent.conf").write_text(
            f"[DEFAULT]\ntransport_url = {RABBIT_URL}\ncontrol_exchange = {exchange}\n"
        )

        emulator = Emulator(tmp, f"http://127.0.0.1:{notify.server_address[1]}/")
        emulator.start()
        logs = {name: open(tmp / f"{name}.log", "w") for name in ("conductor", "api")}  # noqa: SIM115

        api_port = free_port()
        conf = tmp / "kiln.conf"
        conf.write_text(
            f"[DEFAULT]\ntransport_url = {RABBIT_URL}\ncontrol_exchange = {exchange}\nstate_path = {tmp}\n"
            f"[database]\nconnection = sqlite:///{tmp}/kiln.sqlite\n"
            "[conductor]\nhost = deploy-conductor\nheartbeat_interval = 1\nagent_heartbeat_interval = 1\n"
            f"deploy_callback_timeout = {CALLBACK_TIMEOUT}\n"
            f"rescue_callback_timeout = {CALLBACK_TIMEOUT}\nservice_callback_timeout = {CALLBACK_TIMEOUT}\n"
            "enabled_hardware_types = redfish,fake-hardware\n"
            "enabled_boot_interfaces = ipxe,fake\nenabled_deploy_interfaces = direct,fake\n"
            "enabled_management_interfaces = redfish,fake\nenabled_power_interfaces = redfish,fake\n"
            "enabled_network_interfaces = flat,noop\nenabled_inspect_interfaces = agent,fake,no-inspect\n"
            f"[deploy]\nclean_callback_timeout = {CALLBACK_TIMEOUT}\n"
            f"[pxe]\ntftp_root = {tmp}/tftpboot\nhttp_root = {tmp}/httpboot\n"
            "http_url = http://127.0.0.1:8088\ndeploy_kernel = http://127.0.0.1:8088/agent.kernel\n"
            "deploy_ramdisk = http://127.0.0.1:8088/agent.initramfs\n"
            f"agent_config_url = {image_url}/agent.conf\n"
            f"[dnsmasq]\nhostsdir = {tmp}/dhcp-hosts\noptsdir = {tmp}/dhcp-opts\n"
            "[redfish]\npower_state_change_timeout = 40\n"
            f"[api]\nhost_ip = 127.0.0.1\nport = {api_port}\n"
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        subprocess.run(
            [sys.executable, "-m", "agent.cmd.dbsync", "--config-file", str(conf), "upgrade"],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        conductor = subprocess.Popen(
            [sys.executable, "-m", "agent.cmd.conductor", "--config-file", str(conf)],
            cwd=REPO,
            env=env,
            stdout=logs["conductor"],
            stderr=subprocess.STDOUT,
        )
        procs.append(conductor)
        api = subprocess.Popen(
            [sys.executable, "-m", "agent.cmd.api", "--config-file", str(conf)],
            cwd=REPO,
            env=env,
            stdout=logs["api"],
            stderr=subprocess.STDOUT,
        )
        procs.append(api)
        url = f"http://127.0.0.1:{api_port}"
        _wait_http(url + "/", api)
        deadline = time.monotonic() + 60
        while "redfish" not in _drivers(url):
            if time.monotonic() > deadline or conductor.poll() is not None:
                raise RuntimeError(
                    f"kiln-conductor did not register the redfish driver; see {tmp}/conductor.log"
                )
            time.sleep(0.3)
        region = openstack.config.get_cloud_region(
            auth_type="none", baremetal_endpoint_override=url, load_yaml_config=False, load_envvars=False
        )
        yield {
            "conn": connection.Connection(config=region),
            "bmc": emulator.url,
            "node": node,
            "tmp": tmp,
            "images": images,
            "image_url": image_url,
            "conductor": conductor,
            "emulator": emulator,
        }
    finally:
        node.close()
        if emulator is not None:
            emulator.stop()
        for proc in reversed(procs):
            _stop(proc)
        for server in servers:
            server.shutdown()
            server.server_close()
