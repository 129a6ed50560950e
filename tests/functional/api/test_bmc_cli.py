"""BIOS settings, firmware components and RAID through Redfish, end to end: `baremetal node bios
setting list/show`, `baremetal node firmware list`, `baremetal node set --target-raid-config` and
manual cleans with bios/raid/firmware steps, against kiln-api + kiln-conductor over RabbitMQ and
sushy-tools' emulator in libvirt mode. The emulator's system is a libvirt domain this test defines
(never starts) and removes; it keeps BIOS settings and versions in the domain's metadata and builds
volumes in a libvirt storage pool of the test's own."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.functional import procs
from tests.functional.api.baremetal_cli import runner
from tests.functional.api_services import conductor_and_api

libvirt = pytest.importorskip("libvirt")

URI = "qemu:///system"
DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name><uuid>{uuid}</uuid>
  <memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='network'/></os>
</domain>"""
POOL_XML = "<pool type='dir'><name>{name}</name><target><path>{path}</path></target></pool>"


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


@pytest.fixture(scope="module")
def bmc(tmp_path_factory):
    """A defined (not started) libvirt domain behind sushy-emulator; yields (BMC URL, system UUID)."""
    if shutil.which("sushy-emulator") is None:
        pytest.skip("sushy-emulator (sushy-tools) is not installed")
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        pytest.skip(f"libvirt is not reachable at {URI}: {exc}")
    tmp = tmp_path_factory.mktemp("bmc")
    tag = uuid.uuid4().hex[:8]
    system = str(uuid.uuid4())
    (tmp / "pool").mkdir()
    pool = conn.storagePoolDefineXML(POOL_XML.format(name=f"kiln-test-{tag}", path=tmp / "pool"))
    domain = proc = None
    try:
        pool.create()
        domain = conn.defineXML(DOMAIN_XML.format(name=f"kiln-test-bmc-{tag}", uuid=system))
        key = (system, "1")
        conf = tmp / "emulator.conf"
        conf.write_text(
            f"SUSHY_EMULATOR_LIBVIRT_URI = {URI!r}\n"
            f"SUSHY_EMULATOR_ALLOWED_INSTANCES = [{system!r}]\n"
            f"SUSHY_EMULATOR_STORAGE_POOL = {pool.name()!r}\n"
            f"SUSHY_EMULATOR_STATE_DIR = {str(tmp / 'state')!r}\n"
            "SUSHY_EMULATOR_STORAGE = "
            + repr({system: [{"Id": "1", "Name": "Local Storage Controller", "Drives": ["d0"]}]})
            + "\nSUSHY_EMULATOR_DRIVES = "
            + repr(
                {key: [{"Id": "d0", "Name": "Drive 0", "CapacityBytes": 200 * 1024**3, "Protocol": "SAS"}]}
            )
            + f"\nSUSHY_EMULATOR_VOLUMES = {repr({key: []})}\n"
        )
        port = procs.free_port()
        with open(tmp / "emulator.log", "w") as log:
            proc = subprocess.Popen(
                ["sushy-emulator", "-i", "127.0.0.1", "-p", str(port), "--config", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        procs.wait_for(lambda: procs.http_answers(f"{url}/redfish/v1/Systems"), 30, "sushy-emulator", (proc,))
        yield url, system
    finally:
        try:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=15)
        finally:
            try:
                if domain is not None:
                    domain.undefine()
            finally:
                if pool.isActive():
                    for volume in pool.listAllVolumes():
                        volume.delete()
                    pool.destroy()
                pool.undefine()
                conn.close()


@pytest.fixture(scope="module")
def kiln(tmp_path_factory, bmc):
    """kiln-conductor with the redfish bios, firmware and raid interfaces enabled, and kiln-api."""
    extra = {
        "conductor": {
            "enabled_hardware_types": "fake-hardware,redfish",
            "enabled_power_interfaces": "fake,redfish",
            "enabled_management_interfaces": "fake,redfish",
            "enabled_bios_interfaces": "no-bios,redfish",
            "enabled_firmware_interfaces": "no-firmware,redfish",
            "enabled_raid_interfaces": "agent,no-raid,redfish",
        },
        "redfish": {"power_state_change_timeout": 20, "power_state_poll_interval": 0.5},
    }
    with conductor_and_api(tmp_path_factory.mktemp("kiln"), "bmc-conductor", extra) as url:
        yield url


@pytest.fixture(scope="module")
def bm(kiln):
    """Run `baremetal ...` against kiln-api at the newest microversion; JSON back for -f json."""
    return runner(kiln, timeout=180)


def _clean(bm, node: str, steps: list) -> dict:
    bm("node", "clean", node, "--clean-steps", json.dumps(steps), "--wait", "120")
    shown = bm("node", "show", node, "-f", "json")
    assert (shown["provision_state"], shown["last_error"]) == ("manageable", None)
    return shown


def _bios(bm, node: str) -> dict[str, str]:
    return {s["name"]: s["value"] for s in bm("node", "bios", "setting", "list", node, "-f", "json")}


def test_bios_firmware_and_raid_through_redfish(bm, bmc, tmp_path: Path):
    url, system = bmc
    node = bm(
        "node", "create", "--driver", "redfish", "--name", "bmc0",
        "--bios-interface", "redfish", "--raid-interface", "redfish", "--firmware-interface", "redfish",
        "--boot-interface", "fake", "--deploy-interface", "fake", "--network-interface", "noop",
        "--driver-info", f"redfish_address={url}",
        "--driver-info", f"redfish_system_id=/redfish/v1/Systems/{system}", "-f", "json",
    )["uuid"]  # fmt: skip
    assert bm("node", "bios", "setting", "list", node, "-f", "json") == []  # nothing read before manage
    bm("node", "manage", node, "--wait", "60")

    # manage read the BMC's BIOS settings (with its registry) and firmware versions
    settings = _bios(bm, node)
    assert settings["ProcTurboMode"] == "Enabled" and settings["BootMode"] == "Uefi"
    turbo = bm("node", "bios", "setting", "show", node, "ProcTurboMode", "-f", "json")
    assert turbo["allowable_values"] == ["Enabled", "Disabled"] and turbo["attribute_type"] == "Enumeration"
    firmware = {c["component"]: c for c in bm("node", "firmware", "list", node, "-f", "json")}
    assert firmware["bios"]["current_version"] == firmware["bios"]["initial_version"] == "1.0.0"

    # a manual clean applies BIOS settings through the BMC, without a ramdisk
    _clean(bm, node, [{"interface": "bios", "step": "apply_configuration",
                      "args": {"settings": [{"name": "ProcTurboMode", "value": "Disabled"}]}}])  # fmt: skip
    assert _bios(bm, node)["ProcTurboMode"] == "Disabled"
    on_bmc = _get(f"{url}/redfish/v1/Systems/{system}/BIOS")["Attributes"]
    assert on_bmc["ProcTurboMode"] == "Disabled"  # the emulator keeps it in the domain's metadata
    turbo = [{"interface": "bios", "step": "apply_configuration",
              "args": {"settings": [{"name": "ProcTurboMode", "value": "Turbo"}]}}]  # fmt: skip
    refused = bm("node", "clean", node, "--clean-steps", json.dumps(turbo), ok=False)
    assert refused.returncode != 0 and "'Turbo' is not an allowed value of 'ProcTurboMode'" in refused.stderr
    shown = bm("node", "show", node, "-f", "json")  # refused before cleaning started: nothing changed
    assert (shown["provision_state"], shown["last_error"]) == ("manageable", None)
    _clean(bm, node, [{"interface": "bios", "step": "factory_reset"}])
    assert _bios(bm, node)["ProcTurboMode"] == "Enabled"

    # a target RAID configuration, validated, then built as a Redfish volume
    raid = {
        "logical_disks": [{"raid_level": "1", "size_gb": 10, "volume_name": "root", "is_root_volume": True}]
    }
    (tmp_path / "raid.json").write_text(json.dumps(raid))
    bm("node", "set", node, "--target-raid-config", str(tmp_path / "raid.json"))
    assert bm("node", "show", node, "-f", "json")["target_raid_config"] == raid
    (tmp_path / "bad.json").write_text(json.dumps({"logical_disks": [{"raid_level": "7", "size_gb": 1}]}))
    bad = bm("node", "set", node, "--target-raid-config", str(tmp_path / "bad.json"), ok=False)
    assert bad.returncode != 0 and "logical_disks[0].raid_level" in bad.stderr
    shown = _clean(bm, node, [{"interface": "raid", "step": "create_configuration"}])
    built = shown["raid_config"]["logical_disks"]
    assert [(d["raid_level"], d["size_gb"], d["controller"], d["is_root_volume"]) for d in built] == [
        ("1", 10, "1", True)
    ]
    volumes = _get(f"{url}/redfish/v1/Systems/{system}/Storage/1/Volumes")["Members"]
    assert len(volumes) == 1
    assert _get(f"{url}{volumes[0]['@odata.id']}")["CapacityBytes"] == 10 * 1024**3

    # a firmware update through UpdateService.SimpleUpdate
    image = {"component": "bios", "url": "http://192.0.2.1/bios-1.1.bin"}
    _clean(bm, node, [{"interface": "firmware", "step": "update", "args": {"settings": [image]}}])
    bios = {c["component"]: c for c in bm("node", "firmware", "list", node, "-f", "json")}["bios"]
    assert (bios["initial_version"], bios["current_version"], bios["last_version_flashed"]) == (
        "1.0.0",
        "1.1.0",
        "1.1.0",
    )

    # a BMC that cannot do a step fails it saying what was refused (sushy-tools has no volume DELETE)
    delete = [{"interface": "raid", "step": "delete_configuration"}]
    failed = bm("node", "clean", node, "--clean-steps", json.dumps(delete), "--wait", "120", ok=False)
    assert failed.returncode != 0
    shown = bm("node", "show", node, "-f", "json")
    assert shown["provision_state"] == "clean failed"
    assert (
        "raid.delete_configuration failed" in shown["last_error"] and "delete volume" in shown["last_error"]
    )
    assert shown["raid_config"]["logical_disks"]  # still what the BMC has
    bm("node", "manage", node)
    bm("node", "delete", node)


def test_bios_and_firmware_steps_service_an_active_node(bm, bmc):
    """`baremetal node service` with bios and firmware steps: run through the BMC, node back to active."""
    url, system = bmc
    node = bm(
        "node", "create", "--driver", "redfish", "--name", "bmc-svc",
        "--bios-interface", "redfish", "--firmware-interface", "redfish",
        "--boot-interface", "fake", "--deploy-interface", "fake", "--network-interface", "noop",
        "--driver-info", f"redfish_address={url}",
        "--driver-info", f"redfish_system_id=/redfish/v1/Systems/{system}", "-f", "json",
    )["uuid"]  # fmt: skip
    bm("node", "manage", node, "--wait", "60")
    bm("node", "adopt", node, "--wait", "60")
    before = {c["component"]: c for c in bm("node", "firmware", "list", node, "-f", "json")}["bios"]
    steps = [
        {"interface": "bios", "step": "apply_configuration",
         "args": {"settings": [{"name": "ProcTurboMode", "value": "Disabled"}]}},
        {"interface": "firmware", "step": "update",
         "args": {"settings": [{"component": "bios", "url": "http://192.0.2.1/bios-1.2.bin"}]}},
    ]  # fmt: skip
    bm("node", "service", node, "--service-steps", json.dumps(steps), "--wait", "120")
    shown = bm("node", "show", node, "-f", "json")
    assert (shown["provision_state"], shown["last_error"], shown["service_step"]) == ("active", None, {})
    assert _bios(bm, node)["ProcTurboMode"] == "Disabled"  # the cache was re-read after servicing
    assert _get(f"{url}/redfish/v1/Systems/{system}/BIOS")["Attributes"]["ProcTurboMode"] == "Disabled"
    after = {c["component"]: c for c in bm("node", "firmware", "list", node, "-f", "json")}["bios"]
    assert after["current_version"] != before["current_version"]
    assert after["last_version_flashed"] == after["current_version"]
    # bad step arguments are refused before servicing starts, checked against the cached settings
    turbo = [{"interface": "bios", "step": "apply_configuration",
              "args": {"settings": [{"name": "ProcTurboMode", "value": "Turbo"}]}}]  # fmt: skip
    refused = bm("node", "service", node, "--service-steps", json.dumps(turbo), ok=False)
    assert refused.returncode != 0 and "'Turbo' is not an allowed value of 'ProcTurboMode'" in refused.stderr
    assert bm("node", "show", node, "-f", "json")["provision_state"] == "active"
    bm("node", "maintenance", "set", node)
    bm("node", "delete", node)
