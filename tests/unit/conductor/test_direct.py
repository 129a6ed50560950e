"""The direct deploy interface, end to end in one process: conductor, agent steps, a file as the disk."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest

from agent.common import exception, states
from agent.conductor import agent_commands, deployments, timeouts
from agent.conductor.drivers import direct
from agent.conductor.drivers import fake as fake_drivers
from tests.unit.conductor.deploy_stack import MIB, Stack

SHA_OTHER = "0" * 64


@pytest.fixture
def stack(tmp_path):
    """The in-process stack with one available node."""
    s = Stack(tmp_path)
    yield s
    s.close()


def _sha256_of_prefix(path: str, size: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read(size)).hexdigest()


def _partitions(path: str) -> list[dict]:
    out = subprocess.run(["sfdisk", "--json", path], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return []
    return json.loads(out.stdout)["partitiontable"].get("partitions", [])


def test_deploy_steps_are_ironics_in_order(stack) -> None:
    from agent.conductor import task_manager

    with task_manager.acquire({}, stack.node.uuid, shared=True, host="x") as task:
        names = [s["step"] for s in deployments.ordered_deploy_steps(task)]
    assert names == [
        "deploy",
        "write_image",
        "prepare_instance_boot",
        "tear_down_agent",
        "switch_to_tenant_network",
        "boot_instance",
    ]


def test_deploy_writes_image_and_configdrive_then_active(stack) -> None:
    stack.set_image()
    configdrive = {"meta_data": {"hostname": "tenant-1"}, "user_data": "#cloud-config\n"}
    stack.manager.change_provision_state({}, stack.node.uuid, "active", configdrive=configdrive)
    node = stack.wait_state(states.DEPLOYWAIT)
    info = node.driver_internal_info
    assert info[fake_drivers.POWER_KEY] == states.POWER_ON
    assert info[fake_drivers.BOOT_DEVICE_KEY] == {"boot_device": "pxe", "persistent": False}
    assert info[agent_commands.STEP_INDEX_KEY] == 1

    stack.boot_agent()
    node = stack.drive(states.ACTIVE, states.DEPLOYFAIL)
    assert node.provision_state == states.ACTIVE, node.last_error
    assert node.last_error is None
    assert node.target_provision_state is None
    assert node.power_state == states.POWER_ON
    info = node.driver_internal_info
    assert info[fake_drivers.BOOT_DEVICE_KEY] == {"boot_device": "disk", "persistent": True}
    for key in agent_commands.OPERATION_KEYS:
        assert key not in info
    # the image is on the disk byte for byte, except the partition table that gained the config-2 entry
    with open(stack.disk, "rb") as disk, open(stack.images + "/disk.raw", "rb") as image:
        written, original = disk.read(8 * MIB), image.read()
    assert written[512:] == original[512:]
    assert written[446:462] == original[446:462]  # the image's own first partition entry
    # and the configdrive is the last partition, an ISO labelled config-2 holding our meta_data
    parts = _partitions(stack.disk)
    assert parts, "no partition table after deploy"
    last = parts[-1]
    with open(stack.disk, "rb") as fh:
        fh.seek(last["start"] * 512 + 32768)
        pvd = fh.read(2048)
    assert pvd[1:6] == b"CD001"
    assert pvd[40:72].decode().strip().lower() == "config-2"


def test_bad_checksum_fails_deploy_naming_both_sums_and_wipes_table(stack) -> None:
    stack.set_image(checksum=SHA_OTHER)
    stack.manager.change_provision_state({}, stack.node.uuid, "active")
    stack.wait_state(states.DEPLOYWAIT)
    stack.boot_agent()
    node = stack.drive(states.DEPLOYFAIL, states.ACTIVE)
    assert node.provision_state == states.DEPLOYFAIL
    assert "write_image" in node.last_error
    assert SHA_OTHER in node.last_error
    assert stack.image_sha in node.last_error
    assert node.power_state == states.POWER_OFF
    with open(stack.disk, "rb") as fh:
        assert fh.read(MIB) == b"\0" * MIB
    for key in agent_commands.OPERATION_KEYS:
        assert key not in node.driver_internal_info


def test_unreachable_image_fails_deploy_naming_the_url(stack) -> None:
    stack.set_image()
    url = stack.http.url("missing.raw")
    info = dict(stack.node_now().instance_info)
    info["image_source"] = url
    from agent.db import api as db_api

    db_api.update_node(stack.node.uuid, {"instance_info": info})
    stack.manager.change_provision_state({}, stack.node.uuid, "active")
    stack.wait_state(states.DEPLOYWAIT)
    stack.boot_agent()
    node = stack.drive(states.DEPLOYFAIL, states.ACTIVE)
    assert node.provision_state == states.DEPLOYFAIL
    assert "missing.raw" in node.last_error
    assert "404" in node.last_error
    assert node.power_state == states.POWER_OFF


def test_agent_that_never_calls_back_times_out(stack) -> None:
    import datetime

    stack.set_image()
    stack.manager.change_provision_state({}, stack.node.uuid, "active")
    stack.wait_state(states.DEPLOYWAIT)
    assert timeouts.check_callback_timeouts() == []
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=3600)
    assert timeouts.check_callback_timeouts(now=later) == [stack.node.uuid]
    node = stack.node_now()
    assert node.provision_state == states.DEPLOYFAIL
    assert "deploy_callback_timeout" in node.last_error
    assert "1800 s" in node.last_error
    assert node.power_state == states.POWER_OFF


def test_deploy_failed_node_can_be_deployed_again(stack) -> None:
    stack.set_image(checksum=SHA_OTHER)
    stack.manager.change_provision_state({}, stack.node.uuid, "active")
    stack.wait_state(states.DEPLOYWAIT)
    stack.boot_agent()
    stack.drive(states.DEPLOYFAIL)
    stack.set_image()
    stack.manager.change_provision_state({}, stack.node.uuid, "active")
    stack.wait_state(states.DEPLOYWAIT)
    stack.boot_agent()  # the ramdisk boots again and looks up: a new token
    node = stack.drive(states.ACTIVE, states.DEPLOYFAIL)
    assert node.provision_state == states.ACTIVE, node.last_error
    assert _sha256_of_prefix(stack.disk, 8 * MIB) == stack.image_sha  # no configdrive: the image exactly


def test_stale_step_result_is_ignored(stack) -> None:
    stack.set_image()
    stack.manager.change_provision_state({}, stack.node.uuid, "active")
    stack.wait_state(states.DEPLOYWAIT)
    agent = stack.boot_agent()
    agent.conductor.step_result(
        {},
        stack.node.uuid,
        agent.token,
        "write_image",
        {"command_id": "nope", "status": "failed", "error": "x"},
    )
    node = stack.node_now()
    assert node.provision_state == states.DEPLOYWAIT
    assert node.last_error is None


@pytest.fixture
def ipxe_stack(stack, tmp_path):
    """The stack's node as a Redfish-typed machine with iPXE boot and a flat network (power still fake)."""
    from oslo_config import cfg

    from agent.conductor.drivers import boot_files, driver_factory  # noqa: F401  (registers [pxe])
    from agent.db import api as db_api

    conf = cfg.CONF
    overrides = [
        ("enabled_hardware_types", ["fake-hardware", "redfish"], "conductor"),
        ("enabled_boot_interfaces", ["fake", "ipxe"], "conductor"),
        ("enabled_network_interfaces", ["noop", "flat"], "conductor"),
        ("tftp_root", str(tmp_path / "tftpboot"), "pxe"),
        ("http_root", str(tmp_path / "httpboot"), "pxe"),
        ("deploy_kernel", "http://127.0.0.1:8088/agent.kernel", "pxe"),
        ("deploy_ramdisk", "http://127.0.0.1:8088/agent.initramfs", "pxe"),
        ("hostsdir", str(tmp_path / "hosts"), "dnsmasq"),
        ("optsdir", str(tmp_path / "opts"), "dnsmasq"),
    ]
    for name, value, group in overrides:
        conf.set_override(name, value, group=group)
    driver_factory.reset()
    db_api.update_node(
        stack.node.uuid,
        {
            "driver": "redfish",
            "boot_interface": "ipxe",
            "management_interface": "fake",
            "power_interface": "fake",
            "network_interface": "flat",
        },
    )
    yield stack, tmp_path
    for name, _value, group in overrides:
        conf.clear_override(name, group=group)
    driver_factory.reset()


def test_active_node_keeps_its_dhcp_host_entry_without_boot_options(ipxe_stack) -> None:
    from agent.conductor.drivers import pxe

    stack, tmp = ipxe_stack
    host = tmp / "hosts" / "52-54-00-12-34-56"
    stack.set_image()
    stack.manager.change_provision_state({}, stack.node.uuid, "active")
    stack.wait_state(states.DEPLOYWAIT)
    assert host.read_text() == f"52:54:00:12:34:56,set:kiln-{stack.node.uuid},set:kiln-525400123456\n"
    assert os.listdir(tmp / "opts") == [stack.node.uuid]
    stack.boot_agent()
    node = stack.drive(states.ACTIVE, states.DEPLOYFAIL)
    assert node.provision_state == states.ACTIVE, node.last_error
    # tear_down_agent removed the agent's boot files and options; the instance keeps its lease, untagged
    assert host.read_text() == "52:54:00:12:34:56\n"
    assert os.listdir(tmp / "opts") == []
    assert sorted(os.listdir(tmp / "httpboot")) == ["boot.ipxe"]
    assert node.driver_internal_info[pxe.INSTANCE_DHCP_KEY] is True
    # undeploy: tear down, clean_up_instance, cleaning through the agent again, then nothing is left
    stack.manager.change_provision_state({}, stack.node.uuid, "deleted")
    stack.wait_state(states.CLEANWAIT)
    assert host.read_text().startswith("52:54:00:12:34:56,set:kiln-")  # the agent boots for cleaning
    stack.boot_agent()
    node = stack.drive(states.AVAILABLE, states.CLEANFAIL)
    assert node.provision_state == states.AVAILABLE, node.last_error
    assert host.read_text() == "52:54:00:12:34:56,ignore\n"
    assert os.listdir(tmp / "opts") == []
    assert sorted(os.listdir(tmp / "httpboot")) == ["boot.ipxe"]
    assert pxe.INSTANCE_DHCP_KEY not in node.driver_internal_info
    assert pxe.WRITTEN_KEY not in node.driver_internal_info


# --- instance_info checks, no services needed ---------------------------------------------------


class _Node:
    def __init__(self, instance_info: dict) -> None:
        self.uuid = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
        self.instance_info = instance_info
        self.properties = {}


def test_checksum_forms() -> None:
    sha = "a" * 64
    assert direct.image_checksum(_Node({"image_checksum": sha})) == ("sha256", sha)
    assert direct.image_checksum(_Node({"image_checksum": "sha512:" + "B" * 128})) == ("sha512", "b" * 128)
    assert direct.image_checksum(
        _Node({"image_os_hash_algo": "sha256", "image_os_hash_value": sha, "image_checksum": "c" * 32})
    ) == ("sha256", sha)


@pytest.mark.parametrize(
    ("info", "words"),
    [
        ({"image_source": "http://x/i.raw"}, ["image_checksum"]),
        ({"image_source": "http://x/i.raw", "image_checksum": "sha1:" + "a" * 40}, ['"sha1"']),
        ({"image_source": "http://x/i.raw", "image_checksum": "sha256:abc"}, ["'abc'", "sha256 hex digest"]),
        ({"image_source": "ftp://x/i.raw", "image_checksum": "a" * 64}, ["ftp://x/i.raw", "http://"]),
        ({"image_checksum": "a" * 64}, ["image_source is required"]),
        ({"image_source": "http://x/i", "image_checksum": "a" * 64, "image_disk_format": "vmdk"}, ['"vmdk"']),
    ],
)
def test_bad_instance_info_is_named(info: dict, words: list[str]) -> None:
    with pytest.raises((exception.InvalidParameterValue, exception.MissingParameterValue)) as err:
        direct.write_image_args(_Node(info))
    text = str(err.value)
    assert "1be26c0b-03f2-4d2e-ae87-c02d7f33c123" in text
    for word in words:
        assert word in text
