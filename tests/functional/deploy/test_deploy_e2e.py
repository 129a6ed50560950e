"""A full deploy of a simulated Redfish node over RabbitMQ, driven with openstacksdk through kiln-api.

Order matters (one node, module-scoped processes): enroll and provide (cleaning), deploy with a
configdrive, undeploy (cleaning), then the failures: bad checksum, unreachable image, an agent that
never calls back, a BMC that cannot be reached, wrong BMC credentials, and a BMC that dies while the
node is being cleaned. The node's agent is the real kiln-agent, booted with the kernel command line
of the iPXE script the conductor wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import urllib.error

import pytest
from openstack import exceptions as sdk_exc

from agent.conductor.drivers import dnsmasq

from .conftest import BMC_PASSWORD, BMC_USER, CALLBACK_TIMEOUT, MAC, MIB, SYSTEM_UUID, free_port

pytestmark = pytest.mark.slow
WAIT = 240


def _make_image(path) -> str:
    with open(path, "wb") as fh:
        fh.write(b"\0" * MIB)
        fh.write(os.urandom(7 * MIB))
    subprocess.run(
        ["sfdisk", "--quiet", str(path)],
        input="label: dos\nstart=2048, size=8192, type=83\n",
        text=True,
        check=True,
    )
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


@pytest.fixture(scope="module")
def image(stack):
    """A raw 8 MiB image with an MBR; (URL, sha256)."""
    sha = _make_image(stack["images"] / "disk.raw")
    return f"{stack['image_url']}/disk.raw", sha


@pytest.fixture(scope="module")
def node(stack):
    """The node enrolled, managed and provided (automated cleaning through its agent) -> available."""
    bm = stack["conn"].baremetal
    created = bm.create_node(
        name="sim-node",
        driver="redfish",
        driver_info=_driver_info(stack),
        boot_interface="ipxe",
        deploy_interface="direct",
        inspect_interface="agent",
        network_interface="flat",
    )
    bm.create_port(node_id=created.id, address=MAC, pxe_enabled=True)
    bm.set_node_provision_state(created, "manage", wait=True, timeout=WAIT)
    node = bm.set_node_provision_state(created, "provide", wait=True, timeout=WAIT)
    assert node.provision_state == "available", node.last_error
    return node


def _boot_files(stack) -> list[str]:
    """The node's boot files and live dnsmasq entries (not the "ignore" tombstones of ports that left)."""
    found = []
    for sub in ("httpboot", "dhcp-hosts", "dhcp-opts"):
        top = stack["tmp"] / sub
        for dirpath, _dirs, files in os.walk(top):
            found += [os.path.join(dirpath, f) for f in files]
    live = [f for f in found if "/dhcp-hosts/" not in f or dnsmasq.is_live(open(f).read())]
    return sorted(os.path.relpath(f, stack["tmp"]) for f in live if not f.endswith("httpboot/boot.ipxe"))


def _partitions(path) -> list[dict]:
    out = subprocess.run(["sfdisk", "--json", str(path)], capture_output=True, text=True, check=False)
    return json.loads(out.stdout)["partitiontable"]["partitions"] if out.returncode == 0 else []


def _set_image(bm, node, url: str, checksum: str) -> None:
    bm.patch_node(
        node,
        [
            {"op": "add", "path": "/instance_info/image_source", "value": url},
            {"op": "add", "path": "/instance_info/image_checksum", "value": checksum},
        ],
    )


def _wait_state(bm, node, state: str, timeout: float = WAIT):
    return bm.wait_for_nodes_provision_state([node], state, timeout=timeout, abort_on_failed_state=False)[0]


HOST_FILE = "dhcp-hosts/" + MAC.replace(":", "-")


def _driver_info(stack) -> dict:
    return {
        "redfish_address": stack["bmc"],
        "redfish_system_id": f"/redfish/v1/Systems/{SYSTEM_UUID}",
        "redfish_username": BMC_USER,
        "redfish_password": BMC_PASSWORD,
    }


def _restore_bmc(bm, node, stack) -> None:
    # The whole driver_info: a JSON patch of one key is applied to the API's masked view, so the
    # password would come back as "******" (see the report: agent/api/controllers/nodes.py).
    bm.patch_node(node, [{"op": "replace", "path": "/driver_info", "value": _driver_info(stack)}])


def _logs(stack) -> str:
    return "".join((stack["tmp"] / f"{name}.log").read_text() for name in ("conductor", "api", "agent"))


def test_provide_cleaned_through_the_agent(stack, node) -> None:
    sim = stack["node"]
    assert sim.agent_runs >= 1  # cleaning booted the agent
    assert not sim.agent_running()  # and powered it off
    assert node.power_state == "power off"
    assert _boot_files(stack) == []
    # The agent booted with what the conductor's iPXE script put on its kernel command line: it found
    # the conductor through kiln.config_url (its own config has no transport_url), never a token.
    cmdline = sim.cmdlines[0]
    assert f"kiln.node_uuid={node.id}" in cmdline
    assert f"kiln.config_url={stack['image_url']}/agent.conf" in cmdline
    assert cmdline.endswith("BOOTIF=01-52-54-00-12-34-56")
    assert "token" not in cmdline and "transport_url" not in cmdline and "guest" not in cmdline
    assert "transport_url" not in sim.conf.read_text()
    fetched = stack["tmp"] / "agent-state" / "kiln-agent.config-url.conf"
    assert fetched.read_text() == (stack["images"] / "agent.conf").read_text()
    assert fetched.stat().st_mode & 0o777 == 0o600


def test_deploy_with_configdrive_then_undeploy(stack, node, image) -> None:
    bm = stack["conn"].baremetal
    url, sha = image
    sim = stack["node"]
    _set_image(bm, node, url, sha)
    configdrive = {"meta_data": {"hostname": "tenant-1", "public_keys": {"k": "ssh-ed25519 AAAA test"}},
                   "user_data": "#cloud-config\nruncmd: [echo hi]\n"}  # fmt: skip
    deployed = bm.set_node_provision_state(node, "active", config_drive=configdrive, wait=True, timeout=WAIT)
    assert deployed.provision_state == "active", deployed.last_error
    assert deployed.last_error is None
    assert deployed.power_state == "power on"
    assert bm.get_node_boot_device(node) == {"boot_device": "disk", "persistent": True}
    assert not sim.agent_running()  # the instance boots from disk: no agent
    # the image, read back, is what was served (but for the MBR that gained the config-2 entry)
    with open(sim.disk, "rb") as disk, open(stack["images"] / "disk.raw", "rb") as src:
        written, original = disk.read(8 * MIB), src.read()
    assert hashlib.sha256(written[512:]).hexdigest() == hashlib.sha256(original[512:]).hexdigest()
    parts = _partitions(sim.disk)
    assert len(parts) == 2
    # the configdrive partition is an ISO 9660 "config-2" with our meta_data and user_data
    iso_at = parts[-1]["start"] * 512
    with open(sim.disk, "rb") as fh:
        fh.seek(iso_at + 32768)
        pvd = fh.read(2048)
        fh.seek(iso_at)
        iso = fh.read(parts[-1]["size"] * 512)
    assert pvd[1:6] == b"CD001"
    assert pvd[40:72].decode().strip().lower() == "config-2"
    assert b'"hostname": "tenant-1"' in iso
    assert b"runcmd: [echo hi]" in iso
    # On the flat network the instance keeps its DHCP host entry (a lease), with no boot options.
    assert _boot_files(stack) == [HOST_FILE]
    assert (stack["tmp"] / HOST_FILE).read_text() == f"{MAC}\n"  # untagged: no boot options apply

    cleaned = bm.set_node_provision_state(node, "deleted", wait=True, timeout=WAIT)
    assert cleaned.provision_state == "available", cleaned.last_error
    assert cleaned.power_state == "power off"
    assert cleaned.instance_info == {}
    assert _partitions(sim.disk) == []
    with open(sim.disk, "rb") as fh:
        assert fh.read(512)[510:] == b"\0\0"
    assert _boot_files(stack) == []


def test_bad_checksum_fails_deploy_and_wipes_table(stack, node, image) -> None:
    bm = stack["conn"].baremetal
    url, sha = image
    wrong = "f" * 64
    _set_image(bm, node, url, wrong)
    bm.set_node_provision_state(node, "active")
    failed = _wait_state(bm, node, "deploy failed")
    assert failed.provision_state == "deploy failed"
    assert wrong in failed.last_error and sha in failed.last_error
    assert failed.power_state == "power off"
    assert _partitions(stack["node"].disk) == []
    assert _boot_files(stack) == []


def test_unreachable_image_fails_deploy(stack, node, image) -> None:
    bm = stack["conn"].baremetal
    url, sha = image
    dead = f"http://127.0.0.1:{free_port()}/disk.raw"
    _set_image(bm, node, dead, sha)
    bm.set_node_provision_state(node, "active")
    failed = _wait_state(bm, node, "deploy failed")
    assert dead in failed.last_error or "127.0.0.1" in failed.last_error
    assert failed.power_state == "power off"
    assert _boot_files(stack) == []


def test_agent_that_never_calls_back_times_out(stack, node, image) -> None:
    bm = stack["conn"].baremetal
    url, sha = image
    _set_image(bm, node, url, sha)
    stack["node"].hold_agent = True
    try:
        started = time.monotonic()
        bm.set_node_provision_state(node, "active")
        failed = _wait_state(bm, node, "deploy failed")
    finally:
        stack["node"].hold_agent = False
    assert time.monotonic() - started >= CALLBACK_TIMEOUT
    assert "deploy_callback_timeout" in failed.last_error
    assert f"{CALLBACK_TIMEOUT} s" in failed.last_error
    assert failed.power_state == "power off"
    assert _boot_files(stack) == []


def test_unreachable_bmc_fails_deploy_with_clear_error(stack, node, image) -> None:
    bm = stack["conn"].baremetal
    url, sha = image
    _set_image(bm, node, url, sha)
    dead = f"http://127.0.0.1:{free_port()}"
    bm.patch_node(node, [{"op": "replace", "path": "/driver_info/redfish_address", "value": dead}])
    try:
        bm.set_node_provision_state(node, "active")
        failed = _wait_state(bm, node, "deploy failed")
    finally:
        _restore_bmc(bm, node, stack)
    assert "Redfish" in failed.last_error
    assert dead in failed.last_error
    assert "s3cret-bmc" not in failed.last_error
    assert _boot_files(stack) == []
    assert (stack["tmp"] / HOST_FILE).read_text() == f"{MAC},ignore\n"
    # a failed node goes back to available through undeploy and cleaning
    with pytest.raises(sdk_exc.SDKException):
        bm.set_node_provision_state(node, "provide")
    cleaned = bm.set_node_provision_state(node, "deleted", wait=True, timeout=WAIT)
    assert cleaned.provision_state == "available", cleaned.last_error


def test_wrong_bmc_credentials_fail_deploy_naming_the_bmc(stack, node, image) -> None:
    bm = stack["conn"].baremetal
    url, sha = image
    wrong = "not-the-pw-4711"
    with pytest.raises(urllib.error.HTTPError) as refused:  # the emulator really checks them
        stack["emulator"].system(password=wrong)
    assert "401" in str(refused.value)
    _set_image(bm, node, url, sha)
    bm.patch_node(node, [{"op": "replace", "path": "/driver_info/redfish_password", "value": wrong}])
    try:
        bm.set_node_provision_state(node, "active")
        failed = _wait_state(bm, node, "deploy failed")
    finally:
        bm.patch_node(
            node, [{"op": "replace", "path": "/driver_info/redfish_password", "value": BMC_PASSWORD}]
        )
    assert failed.provision_state == "deploy failed"
    assert stack["bmc"] in failed.last_error
    assert "401" in failed.last_error
    assert wrong not in failed.last_error and BMC_PASSWORD not in failed.last_error
    assert bm.get_node(node.id).driver_info["redfish_password"] == "******"
    logs = _logs(stack)
    assert wrong not in logs and BMC_PASSWORD not in logs
    assert not stack["node"].agent_running()
    assert _boot_files(stack) == []


def test_bmc_failure_during_cleaning_fails_cleaning(stack, node, image) -> None:
    """The BMC dies when the node powers on into the agent for cleaning: "clean failed", nothing left."""
    bm = stack["conn"].baremetal
    sim = stack["node"]
    emulator = stack["emulator"]
    current = bm.get_node(node.id)
    if current.provision_state != "available":  # after the earlier failures: back through cleaning
        bm.set_node_provision_state(node, "deleted", wait=True, timeout=WAIT)
    runs = sim.agent_runs
    bm.set_node_provision_state(node, "manage", wait=True, timeout=WAIT)
    sim.on_agent_boot = emulator.stop
    try:
        bm.set_node_provision_state(node, "provide")
        failed = _wait_state(bm, node, "clean failed")
    finally:
        sim.on_agent_boot = None
        sim.stop_agent()
        emulator.start()
    assert failed.provision_state == "clean failed"
    assert failed.last_error.startswith(f"Cleaning of node {node.id} failed")
    assert stack["bmc"] in failed.last_error
    assert BMC_PASSWORD not in failed.last_error
    assert failed.power_state in (None, "power off")  # unknown (no BMC) or off, never left "on"
    assert sim.agent_runs == runs  # the agent never booted
    assert _boot_files(stack) == []  # the ramdisk's boot files and the host entry are gone
    # With the BMC back, the node is managed and cleaned again, to available.
    bm.set_node_provision_state(node, "manage", wait=True, timeout=WAIT)
    back = bm.set_node_provision_state(node, "provide", wait=True, timeout=WAIT)
    assert back.provision_state == "available", back.last_error
    assert emulator.system()["PowerState"] == "Off"
    assert _boot_files(stack) == []
