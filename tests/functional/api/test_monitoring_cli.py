"""Power sync, health (1.109), node history (1.78), NIC firmware components and BMC service steps,
driven with `baremetal ...` against kiln-api + kiln-conductor over RabbitMQ and sushy-tools' static
emulator (sushy-static) serving a Redfish mockup this test writes: a system whose Status.Health is
"Warning" in a chassis with one network adapter (sushy-tools' libvirt mode has no NetworkAdapters)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.functional import procs
from tests.functional.api.baremetal_cli import runner
from tests.functional.api_services import conductor_and_api

SYSTEM = "/redfish/v1/Systems/1"
MOCKUP = {
    "": {
        "@odata.id": "/redfish/v1/",
        "Id": "RootService",
        "RedfishVersion": "1.15.0",
        "Systems": {"@odata.id": "/redfish/v1/Systems"},
        "Managers": {"@odata.id": "/redfish/v1/Managers"},
        "Chassis": {"@odata.id": "/redfish/v1/Chassis"},
        "UpdateService": {"@odata.id": "/redfish/v1/UpdateService"},
    },
    "Systems": {"@odata.id": "/redfish/v1/Systems", "Members": [{"@odata.id": SYSTEM}]},
    "Systems/1": {
        "@odata.id": SYSTEM,
        "Id": "1",
        "Name": "gpu-7",
        "PowerState": "On",
        "BiosVersion": "P79 v1.45",
        "Status": {"State": "Enabled", "Health": "Warning", "HealthRollup": "Warning"},
        "Boot": {"BootSourceOverrideTarget": "None", "BootSourceOverrideEnabled": "Disabled"},
        "Actions": {"#ComputerSystem.Reset": {"target": f"{SYSTEM}/Actions/ComputerSystem.Reset"}},
        "Links": {
            "Chassis": [{"@odata.id": "/redfish/v1/Chassis/1"}],
            "ManagedBy": [{"@odata.id": "/redfish/v1/Managers/1"}],
        },
    },
    "Managers": {"@odata.id": "/redfish/v1/Managers", "Members": [{"@odata.id": "/redfish/v1/Managers/1"}]},
    "Managers/1": {"@odata.id": "/redfish/v1/Managers/1", "Id": "1", "FirmwareVersion": "2.10.0"},
    "Chassis": {"@odata.id": "/redfish/v1/Chassis", "Members": [{"@odata.id": "/redfish/v1/Chassis/1"}]},
    "Chassis/1": {
        "@odata.id": "/redfish/v1/Chassis/1",
        "Id": "1",
        "Name": "Chassis",
        "ChassisType": "RackMount",
        "NetworkAdapters": {"@odata.id": "/redfish/v1/Chassis/1/NetworkAdapters"},
    },
    "Chassis/1/NetworkAdapters": {
        "@odata.id": "/redfish/v1/Chassis/1/NetworkAdapters",
        "Members": [{"@odata.id": "/redfish/v1/Chassis/1/NetworkAdapters/NIC1"}],
    },
    "Chassis/1/NetworkAdapters/NIC1": {
        "@odata.id": "/redfish/v1/Chassis/1/NetworkAdapters/NIC1",
        "Id": "NIC1",
        "Name": "ConnectX-7",
        "Controllers": [{"FirmwarePackageVersion": "28.39.1002"}],
    },
    "UpdateService": {
        "@odata.id": "/redfish/v1/UpdateService",
        "Id": "UpdateService",
        "Name": "Update Service",
        "Actions": {
            "#UpdateService.SimpleUpdate": {"target": "/redfish/v1/UpdateService/Actions/SimpleUpdate"}
        },
    },
}


@pytest.fixture(scope="module")
def bmc(tmp_path_factory):
    """sushy-static serving MOCKUP; yields the BMC's URL."""
    exe = shutil.which("sushy-static") or shutil.which("sushy-static", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("sushy-static (sushy-tools) is not installed")
    tmp = tmp_path_factory.mktemp("mockup")
    for path, body in MOCKUP.items():
        (tmp / path).mkdir(parents=True, exist_ok=True)
        (tmp / path / "index.json").write_text(json.dumps(body))
    port = procs.free_port()
    with open(tmp / "static.log", "w") as log:
        proc = subprocess.Popen(
            [exe, "-i", "127.0.0.1", "-p", str(port), "-m", str(tmp)], stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_for(lambda: procs.http_answers(f"{url}/redfish/v1/Systems"), 30, "sushy-static", (proc,))
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def kiln(tmp_path_factory, bmc):
    """kiln-conductor (redfish, power sync every second) and kiln-api."""
    extra = {
        "conductor": {
            "enabled_hardware_types": "fake-hardware,redfish",
            "enabled_power_interfaces": "fake,redfish",
            "enabled_management_interfaces": "fake,redfish",
            "enabled_firmware_interfaces": "no-firmware,redfish",
            "sync_power_state_interval": 1,
        },
        "redfish": {"power_state_change_timeout": 5, "power_state_poll_interval": 0.5},
    }
    with conductor_and_api(tmp_path_factory.mktemp("kiln"), "monitoring-conductor", extra) as url:
        yield url


@pytest.fixture(scope="module")
def bm(kiln):
    """Run `baremetal ...` against kiln-api at the newest microversion; JSON back for -f json."""
    return runner(kiln)


def _until(bm, node: str, check, what: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = bm("node", "show", node, "-f", "json")
        if check(shown):
            return shown
        assert time.monotonic() < deadline, f"node {node} never got {what}: {shown}"
        time.sleep(0.5)


def test_health_history_nic_firmware_and_service_steps(bm, bmc, tmp_path: Path):
    node = bm(
        "node", "create", "--driver", "redfish", "--name", "mon0", "--firmware-interface", "redfish",
        "--boot-interface", "fake", "--deploy-interface", "fake", "--network-interface", "noop",
        "--driver-info", f"redfish_address={bmc}", "--driver-info", f"redfish_system_id={SYSTEM}",
        "-f", "json",
    )["uuid"]  # fmt: skip
    bm("node", "manage", node, "--wait", "60")

    # NIC firmware shown beside the BIOS and BMC versions (1.86)
    firmware = {
        c["component"]: c["current_version"] for c in bm("node", "firmware", "list", node, "-f", "json")
    }
    assert firmware == {"bios": "P79 v1.45", "bmc": "2.10.0", "nic:NIC1": "28.39.1002"}

    # health comes from the power sync (1.109); older microversions do not show it
    _until(bm, node, lambda n: n["health"] == "Warning", "health Warning")
    old = bm("--os-baremetal-api-version", "1.108", "node", "show", node, "-f", "json")
    assert "health" not in old

    # a BMC that stops answering: after 3 failed reads, maintenance with fault "power failure"
    dead = f"http://127.0.0.1:{procs.free_port()}"
    bm("node", "set", node, "--driver-info", f"redfish_address={dead}")
    faulted = _until(bm, node, lambda n: n["maintenance"], "maintenance")
    assert faulted["fault"] == "power failure" and dead in faulted["maintenance_reason"]
    history = bm("node", "history", "list", node, "--long", "-f", "json")
    errors = [e for e in history if e["severity"] == "ERROR"]
    assert len(errors) == 1 and errors[0]["event"] == faulted["maintenance_reason"]
    event = bm("node", "history", "get", node, errors[0]["uuid"], "-f", "json")
    assert (event["event_type"], event["conductor"]) == ("monitoring", "monitoring-conductor")
    assert event["state"] == "manageable" and event["duration_seconds"] >= 0  # the 1.115 fields

    # the BMC back: the next successful read ends the maintenance, and says so in the history
    bm("node", "set", node, "--driver-info", f"redfish_address={bmc}")
    back = _until(bm, node, lambda n: not n["maintenance"], "out of maintenance")
    assert back["fault"] is None and back["maintenance_reason"] is None
    latest = bm("node", "history", "list", node, "-f", "json")[-1]
    assert latest["severity"] == "INFO" and "maintenance cleared" in latest["event"]

    # NIC firmware is shown, not flashed: the step is refused before anything starts
    image = {"component": "nic:NIC1", "url": "http://192.0.2.1/nic.bin"}
    nic = [{"interface": "firmware", "step": "update", "args": {"settings": [image]}}]
    refused = bm("node", "clean", node, "--clean-steps", json.dumps(nic), ok=False)
    assert refused.returncode != 0 and "does not update it" in refused.stderr

    # firmware.update as a service step on an active node runs through the BMC (sushy-static answers
    # SimpleUpdate without the task Location sushy needs: servicing fails naming it, and the failure
    # is in the history)
    bm("node", "adopt", node, "--wait", "60")
    image = {"component": "bmc", "url": "http://192.0.2.1/bmc.bin", "wait": 2}
    update = [{"interface": "firmware", "step": "update", "args": {"settings": [image]}}]
    bm("node", "service", node, "--service-steps", json.dumps(update))
    failed = _until(bm, node, lambda n: n["provision_state"] == "service failed", "service failed", 60)
    assert "Service step firmware.update failed" in failed["last_error"]
    assert "SimpleUpdate of bmc failed" in failed["last_error"]
    event = bm("node", "history", "list", node, "--long", "-f", "json")[-1]
    assert (event["severity"], event["event_type"], event["state"]) == ("ERROR", "servicing", "servicing")
    bm("node", "abort", node)
    _until(bm, node, lambda n: n["provision_state"] == "active", "active again")
    bad = [{"interface": "firmware", "step": "update", "args": {}}]
    refused = bm("node", "service", node, "--service-steps", json.dumps(bad), ok=False)
    assert refused.returncode != 0 and "service_steps[0] firmware.update has bad arguments" in refused.stderr
    bm("node", "maintenance", "set", node)
    bm("node", "delete", node)
