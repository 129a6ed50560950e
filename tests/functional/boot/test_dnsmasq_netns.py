"""PXE end to end: dnsmasq in a network namespace serves DHCP+TFTP from the conductor's files.

A client in a second namespace (veth pair) does what PXE firmware and iPXE do: DISCOVER with the
PXE vendor class and client arch (BIOS 0, UEFI 7), with the iPXE user class, then TFTP and HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from agent.common.config import CONF
from agent.conductor.drivers import dnsmasq

CLIENT = os.path.join(os.path.dirname(__file__), "pxe_client.py")
SERVER_IP = "10.77.0.1"
MAC_IPXE = "52:54:00:77:00:01"
MAC_PXE = "52:54:00:77:00:02"
MAC_UNKNOWN = "52:54:00:77:00:99"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("dnsmasq") or not shutil.which("ip"),
    reason="needs root, ip and dnsmasq (apt-get install dnsmasq-base)",
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns(tmp_path, boot_dirs):
    """Server and client namespaces joined by a veth; dnsmasq and an HTTP server in the server one."""
    tag = uuid.uuid4().hex[:6]
    server, client = f"kiln-t-{tag}s", f"kiln-t-{tag}c"
    procs: list[subprocess.Popen] = []
    created: list[str] = []
    try:
        for ns in (server, client):
            _ip("netns", "add", ns)
            created.append(ns)
        _ip("link", "add", "ks" + tag, "netns", server, "type", "veth", "peer", "kc" + tag, "netns", client)
        _ip("-n", server, "addr", "add", f"{SERVER_IP}/24", "dev", "ks" + tag)
        _ip("-n", client, "addr", "add", "10.77.0.200/24", "dev", "kc" + tag)
        for ns, dev in ((server, "ks" + tag), (client, "kc" + tag)):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        pid_file = tmp_path / "dnsmasq.pid"
        CONF.set_override("pid_file", str(pid_file), group="dnsmasq")
        CONF.set_override("http_url", f"http://{SERVER_IP}:8088", group="pxe")
        conf = tmp_path / "dnsmasq.conf"
        conf.write_text(
            dnsmasq.render_conf(
                "ks" + tag,
                ["10.77.0.50,10.77.0.99,255.255.255.0,10m"],
                ignore_unknown=True,
                extra=[f"dhcp-leasefile={tmp_path}/leases", "user=root", "no-ping"],  # no 3 s ping per offer
            )
        )
        procs.append(
            subprocess.Popen(
                ["ip", "netns", "exec", server, "dnsmasq", f"--conf-file={conf}", "--keep-in-foreground"],
                stderr=subprocess.PIPE,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    server,
                    sys.executable,
                    "-m",
                    "http.server",
                    "8088",
                    "--bind",
                    SERVER_IP,
                    "--directory",
                    str(boot_dirs["http_root"]),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        deadline = time.monotonic() + 10
        while not (pid_file.exists() and pid_file.read_text().strip()):
            if procs[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dnsmasq did not start: {procs[0].stderr.read().decode()}")
            time.sleep(0.1)
        yield {"client": client, "iface": "kc" + tag}
    finally:
        CONF.clear_override("http_url", group="pxe")
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], check=False)


def _client(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", env["client"], sys.executable, CLIENT, *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _offer(env, mac: str, arch: int, ipxe: bool = False, plain: bool = False) -> dict | None:
    args = (
        ["dhcp", env["iface"], mac, str(arch)] + (["--ipxe"] if ipxe else []) + (["--plain"] if plain else [])
    )
    return json.loads(_client(env, *args).stdout)["offer"]


def _bootfile(offer: dict) -> str:
    return offer["bootfile_option"] or offer["file"]


def _wait_for_offer(env, mac: str, arch: int, ipxe: bool = False, plain: bool = False) -> dict:
    """dnsmasq reads new hostsdir/optsdir files by inotify, and pings an address before offering it."""
    for _ in range(5):
        offer = _offer(env, mac, arch, ipxe, plain)
        if offer:
            return offer
    raise AssertionError(f"no DHCP offer for {mac}")


def test_pxe_firmware_and_ipxe_get_their_boot_files(netns, make_node, acquire, boot_dirs, tmp_path) -> None:
    node = make_node(ports=[(MAC_IPXE, True)])
    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {})

    bios = _wait_for_offer(netns, MAC_IPXE, 0)
    assert _bootfile(bios) == "undionly.kpxe"
    assert bios["siaddr"] == SERVER_IP
    assert bios["yiaddr"].startswith("10.77.0.")
    uefi = _offer(netns, MAC_IPXE, 7)
    assert _bootfile(uefi) == "snponly.efi"
    ipxe = _offer(netns, MAC_IPXE, 7, ipxe=True)
    assert _bootfile(ipxe) == f"http://{SERVER_IP}:8088/52-54-00-77-00-01.ipxe"
    assert _offer(netns, MAC_UNKNOWN, 0) is None

    # The firmware fetches iPXE over TFTP, iPXE fetches its script over HTTP.
    _client(netns, "tftp", SERVER_IP, "undionly.kpxe", str(tmp_path / "got.kpxe"))
    assert (tmp_path / "got.kpxe").read_bytes() == open("/usr/lib/ipxe/undionly.kpxe", "rb").read()
    _client(netns, "http", _bootfile(ipxe), str(tmp_path / "got.ipxe"))
    script = (tmp_path / "got.ipxe").read_text()
    assert script == (boot_dirs["http_root"] / node / "boot.ipxe").read_text()
    assert f"kiln.node_uuid={node}" in script and "BOOTIF=01-${mac:hexhyp}" in script

    # After clean-up (files removed, the host file rewritten to "ignore") dnsmasq ignores the MAC again.
    with acquire(node) as task:
        task.driver.boot.clean_up_ramdisk(task)
    time.sleep(0.5)
    assert _offer(netns, MAC_IPXE, 0) is None


def test_pxe_interface_serves_pxelinux_config_over_tftp(netns, make_node, acquire, tmp_path) -> None:
    node = make_node(boot_interface="pxe", ports=[(MAC_PXE, True)])
    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {})
    assert _bootfile(_wait_for_offer(netns, MAC_PXE, 0)) == "pxelinux.0"
    assert _bootfile(_offer(netns, MAC_PXE, 7)) == "grubx64.efi"
    _client(netns, "tftp", SERVER_IP, "pxelinux.cfg/01-52-54-00-77-00-02", str(tmp_path / "pxelinux"))
    config = (tmp_path / "pxelinux").read_text()
    assert f"kiln.node_uuid={node}" in config and "ipappend 2" in config


def test_active_instance_gets_a_lease_but_no_boot_file(netns, make_node, acquire, boot_dirs) -> None:
    node = make_node(network_interface="flat", ports=[(MAC_IPXE, True)])
    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {})
    assert _bootfile(_wait_for_offer(netns, MAC_IPXE, 0)) == "undionly.kpxe"
    # The direct deploy's prepare_instance_boot, then tear_down_agent: the node boots its disk.
    with acquire(node) as task:
        task.driver.boot.prepare_instance(task)
        task.driver.boot.clean_up_ramdisk(task)
    for kwargs in ({"plain": True}, {}, {"ipxe": True}):  # the OS's DHCP client, and a stray PXE boot
        offer = _wait_for_offer(netns, MAC_IPXE, 7, **kwargs)
        assert offer["yiaddr"].startswith("10.77.0."), offer
        assert offer["bootfile_option"] is None and offer["file"] == "", offer
    assert os.listdir(boot_dirs["optsdir"]) == []
    assert (boot_dirs["hostsdir"] / "52-54-00-77-00-01").read_text() == f"{MAC_IPXE}\n"
    # Undeployed: everything of the node is gone and dnsmasq ignores the MAC again.
    with acquire(node) as task:
        task.driver.boot.clean_up_instance(task)
    time.sleep(0.5)
    assert _offer(netns, MAC_IPXE, 0, plain=True) is None
    assert (boot_dirs["hostsdir"] / "52-54-00-77-00-01").read_text() == f"{MAC_IPXE},ignore\n"
    assert os.listdir(boot_dirs["optsdir"]) == []
    assert sorted(os.listdir(boot_dirs["http_root"])) == ["boot.ipxe"]
    assert not [f for f in os.listdir(boot_dirs["tftp_root"]) if f not in ("undionly.kpxe", "snponly.efi")]
