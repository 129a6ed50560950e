"""The whole lifecycle on two real TCG VMs, driven by the `baremetal` CLI as an operator types it.

vm0: SeaBIOS, Redfish (sushy-tools), configdrive given inline as JSON (the agent builds the ISO).
vm1: OVMF UEFI, IPMI (virtualbmc), configdrive as a URL in instance_info, image checksum as the
URL of a checksum file. Both, at once: enroll, manage, inspect (compared with libvirt), provide
(automated cleaning erases the disk file), deploy the test OS (its console shows the hostname and
address from the configdrive; the lab network sees that address at the VM's MAC), undeploy
(cleaning again), deploy again. vm1 first fails a deploy on a wrong checksum and is recovered, and
ends with a rebuild that brings a new configdrive (new hostname and address, still one config-2
partition on the disk); vm0 ends with a deploy whose ramdisk never calls back and hits the callback timeout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agent.lab import lab as labmod
from agent.lab import net, vms

CALLBACK_TIMEOUT = 200  # the lab's deploy_callback_timeout: a real ramdisk calls back in 40-90 s here
WAIT = 900  # any one provisioning step under TCG with two VMs on two cores
OS_UP = re.compile(r"kiln-test-os up: hostname=(\S+) addresses=([^\r\n]*)")
PATTERN = {0: 0xAB, 5 << 30: 0xCD}  # offsets in the 10 GiB disk written before cleaning


@pytest.fixture(scope="module")
def lab(tmp_path_factory, ramdisk, test_image):
    """Two VMs, BIOS and UEFI, with a short deploy callback timeout; the test OS image served."""
    if net.exists():
        pytest.skip(f"a lab is up already (netns {net.NETNS}): kiln-lab down first")
    directory = Path(tmp_path_factory.mktemp("lifecycle")) / "lab"
    conf = {"conductor": {"deploy_callback_timeout": CALLBACK_TIMEOUT, "sync_power_state_interval": 0}}
    state = labmod.up(2, "bios,uefi", directory=directory, conf=conf)
    try:
        http = directory / "http"
        for path in (test_image.image, test_image.image.with_name(test_image.image.name + ".sha256")):
            shutil.copyfile(path, http / path.name)
        yield state
    finally:
        labmod.down(directory)


class Operator:
    """`baremetal` as a person types it, against the lab's kiln-api (no auth)."""

    def __init__(self, api_url: str) -> None:
        self.env = {**os.environ, "OS_AUTH_TYPE": "none", "OS_ENDPOINT": api_url, "PYTHONWARNINGS": "ignore"}
        self.program = str(Path(sys.executable).parent / "baremetal")

    def __call__(self, *args: str, check: bool = True) -> str:
        """Run ``baremetal ARGS``; its stdout; AssertionError with its stderr when it fails and ``check``."""
        proc = subprocess.run(
            [self.program, *args], capture_output=True, text=True, env=self.env, timeout=WAIT + 60
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"baremetal {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc.stdout if check else proc.stdout + proc.stderr

    def show(self, node: str) -> dict:
        """`baremetal node show NODE -f json`."""
        return json.loads(self("node", "show", node, "-f", "json"))

    def wait_for(self, node: str, wanted: str, timeout: float = WAIT) -> dict:
        """Poll `node show` until provision state ``wanted``; fail on a failed state or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.show(node)
            if shown["provision_state"] == wanted:
                return shown
            if shown["provision_state"].endswith("failed") and not wanted.endswith("failed"):
                raise AssertionError(f"{node} is {shown['provision_state']}: {shown['last_error']}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{node} is {shown['provision_state']}, not {wanted}, after {timeout} s")
            time.sleep(3)


def _domain(name: str) -> dict:
    conn = vms.connect()
    root = ET.fromstring(conn.lookupByName(name).XMLDesc())
    conn.close()
    return {
        "vcpus": int(root.findtext("vcpu")),
        "memory_mib": int(root.findtext("memory")) // 1024,  # libvirt reports KiB
        "mac": root.find("devices/interface/mac").get("address"),
        "disk": root.find("devices/disk/source").get("file"),
    }


def _disk_reads(path: str, offset: int, byte: int, length: int = 1 << 20) -> bool:
    """Whether ``length`` bytes of the qcow2 disk at ``offset`` all read ``byte`` (qemu-io, read-only)."""
    argv = ["qemu-io", "-r", "-U", "-f", "qcow2", "-c", f"read -P {byte:#x} {offset} {length}", path]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if "Pattern verification failed" in proc.stdout + proc.stderr:
        return False
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stderr.strip()}"
    return True


def _write_pattern(path: str) -> None:
    for offset, byte in PATTERN.items():
        subprocess.run(
            ["qemu-io", "-f", "qcow2", "-c", f"write -P {byte:#x} {offset} 1M", path],
            capture_output=True,
            check=True,
        )
        assert _disk_reads(path, offset, byte)


def _erased(path: str) -> bool:
    return all(_disk_reads(path, offset, 0) for offset in PATTERN)


def _os_ups(console: str) -> list[tuple[str, str]]:
    try:
        text = Path(console).read_text(errors="replace")
    except FileNotFoundError:
        return []
    return OS_UP.findall(text)


def _wait_os_up(console: str, seen_before: int, timeout: float = WAIT) -> tuple[str, str]:
    """The hostname and addresses the deployed OS printed on its console after ``seen_before`` boots."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ups = _os_ups(console)
        if len(ups) > seen_before:
            return ups[seen_before]
        time.sleep(3)
    raise AssertionError(f"the deployed OS did not report on {console} within {timeout} s")


def _address_is_at(ip: str, mac: str) -> bool:
    """Whether the lab network finds ``ip`` at ``mac`` (a datagram from the namespace, then its ARP table)."""
    probe = f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'kiln', ('{ip}', 9))"
    for _ in range(10):
        subprocess.run(["ip", "netns", "exec", net.NETNS, sys.executable, "-c", probe], capture_output=True)
        time.sleep(1)
        neigh = net.in_ns("neigh", "show", ip, check=False).stdout
        if f"lladdr {mac}" in neigh:
            return True
    return False


def _config_partitions(path: str) -> int:
    """How many partitions of the qcow2 disk hold a filesystem labelled config-2 (a raw copy, read-only)."""
    raw = Path(path).with_name(Path(path).name + ".check.raw")
    try:
        subprocess.run(
            ["qemu-img", "convert", "-U", "-O", "raw", path, str(raw)], capture_output=True, check=True
        )
        table = json.loads(
            subprocess.run(["sfdisk", "--json", str(raw)], capture_output=True, check=True).stdout
        )
        sector = int(table["partitiontable"].get("sectorsize", 512))
        labels = [
            subprocess.run(
                [
                    "blkid",
                    "-p",
                    "-o",
                    "value",
                    "-s",
                    "LABEL",
                    "-O",
                    str(int(part["start"]) * sector),
                    str(raw),
                ],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            for part in table["partitiontable"].get("partitions", [])
        ]
    finally:
        raw.unlink(missing_ok=True)
    return sum(1 for label in labels if label.lower() == "config-2")


def _configdrive(node_uuid: str, index: int, mac: str, hostname: str = "", last_octet: int = 0) -> dict:
    hostname = hostname or f"kiln-os-{index}"
    return {
        "meta_data": {"uuid": node_uuid, "hostname": hostname, "name": hostname},
        "network_data": {
            "links": [{"id": "eth0", "type": "phy", "ethernet_mac_address": mac, "mtu": 1500}],
            "networks": [
                {
                    "id": "lab",
                    "link": "eth0",
                    "type": "ipv4",
                    "ip_address": f"10.99.0.{last_octet or 50 + index}",
                    "netmask": "255.255.255.0",
                    "network_id": "lab",
                }
            ],  # fmt: skip
            "services": [],
        },
    }


def _configdrive_iso(tree: Path, contents: dict, target: Path) -> None:
    """A config-2 ISO of ``contents`` as gzipped base64 text at ``target`` (what Ironic's clients make)."""
    latest = tree / "openstack" / "latest"
    latest.mkdir(parents=True)
    (latest / "meta_data.json").write_text(json.dumps(contents["meta_data"]))
    (latest / "network_data.json").write_text(json.dumps(contents["network_data"]))
    iso = tree.parent / "configdrive.iso"
    subprocess.run(
        ["xorrisofs", "-quiet", "-J", "-r", "-V", "config-2", "-o", str(iso), str(tree)], check=True
    )
    gz = subprocess.run(["gzip", "-c", str(iso)], capture_output=True, check=True).stdout
    subprocess.run(["base64", "-w0"], input=gz, stdout=target.open("wb"), check=True)


def _enroll(bm: Operator, lab, index: int, driver: str) -> str:
    node = lab.info["nodes"][index]
    info = lab.info
    if driver == "redfish":
        driver_info = [
            f"redfish_address={node['redfish_address']}",
            f"redfish_system_id={node['redfish_system_id']}",
            f"redfish_username={info['bmc_username']}",
            f"redfish_password={info['bmc_password']}",
        ]
    else:
        driver_info = [
            f"ipmi_address={node['ipmi_address']}",
            f"ipmi_port={node['ipmi_port']}",
            f"ipmi_username={info['bmc_username']}",
            f"ipmi_password={info['bmc_password']}",
            "ipmi_cipher_suite=3",  # virtualbmc answers a SHA-256 login with SHA-1
        ]
    args = ["node", "create", "--driver", driver, "--name", f"lc-{index}", "--boot-interface", "ipxe"]
    args += ["--inspect-interface", "agent", "--deploy-interface", "direct", "--network-interface", "noop"]
    for item in driver_info:
        args += ["--driver-info", item]
    uuid = bm(*args, "-f", "value", "-c", "uuid").strip()
    bm("port", "create", node["mac"], "--node", uuid, "--pxe-enabled", "true")
    return uuid


def _check_inventory(bm: Operator, name: str, node: dict) -> None:
    inventory = json.loads(bm("node", "inventory", "save", name))["inventory"]
    dom = _domain(node["name"])
    disk_bytes = json.loads(
        subprocess.run(
            ["qemu-img", "info", "-U", "--output=json", dom["disk"]], capture_output=True, check=True
        ).stdout
    )["virtual-size"]
    assert inventory["cpu"]["count"] == dom["vcpus"]
    assert inventory["memory"]["physical_mb"] == dom["memory_mib"]
    assert [(d["name"], d["size"]) for d in inventory["disks"]] == [("/dev/vda", disk_bytes)]
    # Ironic's format, as clients read it (interfaces), with Kiln's own model beside it
    assert dom["mac"] in [nic["mac_address"] for nic in inventory["interfaces"]]
    assert dom["mac"] in [nic["mac_address"] for nic in inventory["kiln"]["nics"]]


def _deploy_and_check(bm: Operator, name: str, node: dict, index: int, extra: list[str]) -> None:
    before = len(_os_ups(node["console"]))
    bm("node", "deploy", name, *extra, "--wait", str(WAIT))
    hostname, addresses = _wait_os_up(node["console"], before)
    assert hostname == f"kiln-os-{index}"
    assert f"=10.99.0.{50 + index}/24" in addresses, addresses
    assert _address_is_at(f"10.99.0.{50 + index}", node["mac"])


def _lifecycle(bm: Operator, lab, index: int, driver: str, log: dict) -> None:
    node = lab.info["nodes"][index]
    name = f"lc-{index}"
    http = lab.info["http_url"]
    disk = _domain(node["name"])["disk"]
    uuid = _enroll(bm, lab, index, driver)

    def step(what: str) -> None:
        log.setdefault(name, []).append((what, round(time.monotonic() - started, 1)))

    started = time.monotonic()
    bm("node", "manage", name, "--wait", "120")
    assert bm.show(name)["power_state"] == "power off"  # verifying read the real BMC
    step("manageable")
    bm("node", "inspect", name, "--wait", str(WAIT))
    _check_inventory(bm, name, node)
    step("inspected")
    _write_pattern(disk)
    bm("node", "provide", name, "--wait", str(WAIT))
    assert _erased(disk), f"automated cleaning left data on {disk}"
    step("available (cleaned)")

    contents = _configdrive(uuid, index, node["mac"])
    image = f"{http}/kiln-test-os.qcow2"
    digest = (lab.directory / "http" / "kiln-test-os.qcow2.sha256").read_text().split()[0]
    checksum = digest if index == 0 else f"{image}.sha256"  # the digest, or the URL of a checksum file
    items = [f"image_source={image}", "image_disk_format=qcow2"]
    if index == 0:
        drive = ["--config-drive", json.dumps(contents)]
    else:
        cd = f"configdrive-{name}.b64"
        _configdrive_iso(lab.directory / f"cd-{name}" / "root", contents, lab.directory / "http" / cd)
        items.append(f"configdrive={http}/{cd}")
        drive = []

    def instance(checksum: str) -> None:  # undeploy clears instance_info, as Ironic's does
        args = ["node", "set", name, "--instance-info", f"image_checksum={checksum}"]
        for item in items:
            args += ["--instance-info", item]
        bm(*args)

    instance(checksum)
    _deploy_and_check(bm, name, node, index, drive)
    step("active, OS up")

    bm("node", "undeploy", name, "--wait", str(WAIT))
    assert _erased(disk), f"cleaning after undeploy left the image on {disk}"
    step("undeployed, cleaned")

    if index == 1:  # a wrong checksum fails the deploy clearly; the node recovers with the right one
        instance("0" * 64)
        bm("node", "deploy", name, check=False)
        failed = bm.wait_for(name, "deploy failed")
        assert "checksum" in failed["last_error"] and "0" * 64 in failed["last_error"], failed["last_error"]
        step("deploy failed (wrong checksum)")
    instance(checksum)
    _deploy_and_check(bm, name, node, index, drive)
    step("active again, OS up")

    if index == 1:  # rebuild with a new configdrive: the new hostname and address, one config-2 partition
        before = len(_os_ups(node["console"]))
        renewed = _configdrive(uuid, index, node["mac"], hostname="kiln-os-1-rebuilt", last_octet=61)
        bm("node", "rebuild", name, "--config-drive", json.dumps(renewed), "--wait", str(WAIT))
        hostname, addresses = _wait_os_up(node["console"], before)
        assert hostname == "kiln-os-1-rebuilt"
        assert "=10.99.0.61/24" in addresses, addresses
        assert _address_is_at("10.99.0.61", node["mac"])
        assert _config_partitions(disk) == 1, (
            f"{disk} holds more than one config-2 partition after the rebuild"
        )
        step("rebuilt with a new configdrive, OS up")

    if index == 0:  # a ramdisk that never calls back: the deploy fails on the callback timeout
        bm("node", "undeploy", name, "--wait", str(WAIT))
        instance(checksum)
        bm("node", "set", name, "--driver-info", f"deploy_ramdisk={http}/no-such-initramfs")
        bm("node", "deploy", name, *drive)
        failed = bm.wait_for(name, "deploy failed", CALLBACK_TIMEOUT + 120)
        assert "timed out" in failed["last_error"].lower() or "timeout" in failed["last_error"].lower(), (
            failed
        )
        step("deploy failed (callback timeout)")


def test_lifecycle_bios_redfish_and_uefi_ipmi(lab):
    bm = Operator(lab.info["api_url"])
    log: dict = {}
    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(_lifecycle, bm, lab, 0, "redfish", log),
            pool.submit(_lifecycle, bm, lab, 1, "ipmi", log),
        ]
        errors = [run.exception() for run in runs]
    print("lifecycle (s after manage):", json.dumps(log))
    for error in errors:
        if error is not None:
            raise error


def test_unreachable_bmc_fails_clearly(lab):
    bm = Operator(lab.info["api_url"])
    bm("node", "create", "--driver", "redfish", "--name", "no-bmc", "--driver-info", "redfish_address=http://127.0.0.1:9",
       "--driver-info", "redfish_system_id=/redfish/v1/Systems/x")  # fmt: skip
    out = bm("node", "manage", "no-bmc", "--wait", "120", check=False)
    shown = bm.show("no-bmc")
    assert shown["provision_state"] == "enroll", out
    assert "127.0.0.1:9" in shown["last_error"], shown["last_error"]
