"""The deploy stack of tests/functional/deploy (sushy-tools' emulator, a simulated node running the
real kiln-agent, kiln-api) with any broker, any database and several kiln-conductors, for fault tests."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openstack.config
import pytest
from openstack import connection

from tests.functional import procs
from tests.functional.deploy.conftest import (
    BMC_PASSWORD,
    BMC_USER,
    CALLBACK_TIMEOUT,
    MAC,
    MIB,
    SYSTEM_UUID,
    Emulator,
    SimNode,
    _drivers,
    _Notify,
    _Quiet,
)
from tests.functional.faults.services import start_api, start_conductor

WAIT = 240


def _conf(tmp: Path, transport_url: str, exchange: str, db_url: str, api_port: int, image_url: str) -> Path:
    conf = tmp / "kiln.conf"
    conf.write_text(
        f"[DEFAULT]\ntransport_url = {transport_url}\ncontrol_exchange = {exchange}\nstate_path = {tmp}\n"
        f"[database]\nconnection = {db_url}\n"
        "[conductor]\nheartbeat_interval = 1\nheartbeat_timeout = 6\nagent_heartbeat_interval = 1\n"
        f"deploy_callback_timeout = {CALLBACK_TIMEOUT}\n"
        "enabled_hardware_types = redfish\nenabled_boot_interfaces = ipxe\n"
        "enabled_deploy_interfaces = direct\n"
        "enabled_management_interfaces = redfish\nenabled_power_interfaces = redfish\n"
        "enabled_network_interfaces = flat\nenabled_inspect_interfaces = agent,no-inspect\n"
        f"[deploy]\nclean_callback_timeout = {CALLBACK_TIMEOUT}\n"
        f"[pxe]\ntftp_root = {tmp}/tftpboot\nhttp_root = {tmp}/httpboot\n"
        "http_url = http://127.0.0.1:8088\ndeploy_kernel = http://127.0.0.1:8088/agent.kernel\n"
        "deploy_ramdisk = http://127.0.0.1:8088/agent.initramfs\n"
        f"agent_config_url = {image_url}/agent.conf\n"
        f"[dnsmasq]\nhostsdir = {tmp}/dhcp-hosts\noptsdir = {tmp}/dhcp-opts\n"
        "[redfish]\npower_state_change_timeout = 40\n"
        f"[api]\nhost_ip = 127.0.0.1\nport = {api_port}\nrpc_timeout = 20\n"
    )
    return conf


def make_image(path: Path) -> str:
    """A raw 8 MiB image with an MBR at ``path``; its sha256."""
    with open(path, "wb") as fh:
        fh.write(b"\0" * MIB)
        fh.write(os.urandom(7 * MIB))
    subprocess.run(
        ["sfdisk", "--quiet", str(path)],
        input="label: dos\nstart=2048, size=8192, type=83\n",
        text=True,
        check=True,
    )
    return hashlib.sha256(path.read_bytes()).hexdigest()


def driver_info(bmc_url: str) -> dict:
    """The simulated node's Redfish driver_info."""
    return {
        "redfish_address": bmc_url,
        "redfish_system_id": f"/redfish/v1/Systems/{SYSTEM_UUID}",
        "redfish_username": BMC_USER,
        "redfish_password": BMC_PASSWORD,
    }


class ImageGate:
    """Holds the image server's answers to image downloads while closed (a fault mid-deploy)."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self.asked = threading.Event()  # an image download arrived

    def close(self) -> None:
        """Hold the next image downloads until ``release``."""
        self.asked.clear()
        self._open.clear()

    def release(self) -> None:
        """Answer the held downloads and every later one."""
        self._open.set()

    def wait_open(self) -> None:
        """What a download does: note that it came, then wait (at most WAIT s) for the gate to open."""
        self.asked.set()
        self._open.wait(WAIT)


class _GatedImages(_Quiet):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.endswith(".raw"):
            self.server.gate.wait_open()  # type: ignore[attr-defined]
        super().do_GET()


@contextmanager
def deploy_stack(tmp: Path, transport_url: str, db_url: str, conductors: tuple[str, ...]) -> Iterator[dict]:
    """Everything running; yields conn, bmc, node (SimNode), tmp, image (URL, sha256), image_gate,
    conductors, conf."""
    if shutil.which("sushy-emulator") is None:
        pytest.skip("sushy-emulator (sushy-tools) is not installed")
    started = time.monotonic()
    running: dict[str, subprocess.Popen] = {}
    servers: list[http.server.HTTPServer] = []
    node = SimNode(tmp)
    emulator: Emulator | None = None
    api = None
    try:
        notify = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Notify)
        notify.node = node  # type: ignore[attr-defined]
        servers.append(notify)
        threading.Thread(target=notify.serve_forever, daemon=True).start()
        images = tmp / "images"
        images.mkdir()
        image_http = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_GatedImages, directory=str(images))
        )
        image_http.gate = ImageGate()  # type: ignore[attr-defined]
        servers.append(image_http)
        threading.Thread(target=image_http.serve_forever, daemon=True).start()
        image_url = f"http://127.0.0.1:{image_http.server_address[1]}"
        exchange = f"kiln-fault-{uuid.uuid4().hex[:8]}"
        (images / "agent.conf").write_text(
            f"[DEFAULT]\ntransport_url = {transport_url}\ncontrol_exchange = {exchange}\n"
        )
        sha = make_image(images / "disk.raw")
        emulator = Emulator(tmp, f"http://127.0.0.1:{notify.server_address[1]}/")
        emulator.start()
        api_port = procs.free_port()
        conf = _conf(tmp, transport_url, exchange, db_url, api_port, image_url)
        procs.dbsync(conf)
        for host in conductors:
            running[host] = start_conductor(conf, host)
        api = start_api(conf, api_port)
        url = f"http://127.0.0.1:{api_port}"
        procs.wait_for(lambda: "redfish" in _drivers(url), 60, "the redfish driver", (api,))
        region = openstack.config.get_cloud_region(
            auth_type="none", baremetal_endpoint_override=url, load_yaml_config=False, load_envvars=False
        )
        yield {
            "conn": connection.Connection(config=region),
            "bmc": emulator.url,
            "node": node,
            "tmp": tmp,
            "image": (f"{image_url}/disk.raw", sha),
            "image_gate": image_http.gate,  # type: ignore[attr-defined]
            "conductors": running,
            "conf": conf,
            "started_in": time.monotonic() - started,
        }
    finally:
        node.close()
        if emulator is not None:
            emulator.stop()
        for proc in [api, *running.values()]:
            if proc is not None:
                procs.stop(proc)
        for server in servers:
            server.shutdown()
            server.server_close()


def enroll(stack: dict, bm, **fields):
    """Create the simulated node with its port (state enroll -> manageable)."""
    created = bm.create_node(
        name="sim-node",
        driver="redfish",
        driver_info=driver_info(stack["bmc"]),
        boot_interface="ipxe",
        deploy_interface="direct",
        inspect_interface="no-inspect",
        network_interface="flat",
        **fields,
    )
    bm.create_port(node_id=created.id, address=MAC, pxe_enabled=True)
    return bm.set_node_provision_state(created, "manage", wait=True, timeout=WAIT)


def logs(stack: dict) -> str:
    """All the stack's logs, for a failure message."""
    return "".join(f"\n--- {p.name}\n{procs.read(p)[-3000:]}" for p in sorted(stack["tmp"].glob("*.log")))
