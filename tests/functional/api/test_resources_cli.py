"""`baremetal chassis|volume connector|volume target|deploy template|runbook|inspection rule ...` and
node vmedia/firmware (python-ironicclient at the newest microversion) against kiln-api + kiln-conductor
over RabbitMQ."""

from __future__ import annotations

import json
import time

import pytest

from tests.functional.api.baremetal_cli import runner

STEP = {"interface": "deploy", "step": "erase_devices_metadata", "args": {}}


@pytest.fixture(scope="module")
def bm(kiln):
    """Run `baremetal ... -f json` (or without output) against kiln-api; returns run(*args, ok=True)."""
    return runner(kiln)


def test_chassis_and_node_chassis(bm):
    chassis = bm("chassis", "create", "--description", "rack 7", "--extra", "row=3", "-f", "json")
    assert (chassis["description"], chassis["extra"]) == ("rack 7", {"row": 3})
    node = bm("node", "create", "--driver", "fake-hardware", "--chassis-uuid", chassis["uuid"], "-f", "json")
    assert node["chassis_uuid"] == chassis["uuid"]
    listed = bm("node", "list", "--chassis", chassis["uuid"], "-f", "json")
    assert [n["uuid"] for n in listed] == [node["uuid"]]  # the CLI keeps the API's keys here
    refused = bm("chassis", "delete", chassis["uuid"], ok=False)
    assert refused.returncode != 0 and "contains nodes" in refused.stderr
    bm("node", "delete", node["uuid"])
    bm("chassis", "delete", chassis["uuid"])
    assert bm("chassis", "list", "-f", "json") == []


def _wait(bm, node, field, value):
    for _ in range(200):
        if bm("node", "show", node, "-f", "json")[field] == value:
            return
        time.sleep(0.1)
    raise AssertionError(f"node {node} {field} never became {value}")


def test_volume_connectors_and_targets(bm):
    node = bm("node", "create", "--driver", "fake-hardware", "--name", "vol-cli", "-f", "json")["uuid"]
    bm("node", "power", "off", node)
    _wait(bm, node, "power_state", "power off")
    conn = bm(
        "volume", "connector", "create", "--node", node, "--type", "iqn",
        "--connector-id", "iqn.2026-12.org.kiln:cli", "-f", "json",
    )  # fmt: skip
    target = bm(
        "volume", "target", "create", "--node", node, "--type", "iscsi", "--boot-index", "0",
        "--volume-id", "vol-1", "--property", "target_lun=0", "-f", "json",
    )  # fmt: skip
    assert (target["boot_index"], target["properties"]) == (0, {"target_lun": 0})
    listed = bm("volume", "connector", "list", "--node", node, "-f", "json")
    assert [c.get("UUID", c.get("uuid")) for c in listed] == [conn["uuid"]]  # labels vary by CLI path
    bm("volume", "target", "set", target["uuid"], "--extra", "pool=fast")
    assert bm("volume", "target", "show", target["uuid"], "-f", "json")["extra"] == {"pool": "fast"}
    bm("node", "power", "on", node)
    _wait(bm, node, "power_state", "power on")
    refused = bm("volume", "connector", "delete", conn["uuid"], ok=False)
    assert refused.returncode != 0 and "power" in refused.stderr
    bm("node", "delete", node)  # its connectors and targets go with it
    assert bm("volume", "target", "list", "-f", "json") == []


def test_deploy_templates_runbooks_and_rules(bm):
    steps = json.dumps([{**STEP, "priority": 10}])
    template = bm("deploy", "template", "create", "CUSTOM_WIPE_META", "--steps", steps, "-f", "json")
    assert template["steps"][0]["priority"] == 10
    bad = bm("deploy", "template", "create", "not-a-trait", "--steps", steps, ok=False)
    assert bad.returncode != 0 and "invalid trait" in bad.stderr
    runbook = bm(
        "runbook",
        "create",
        "--name",
        "wipe-meta",
        "--steps",
        json.dumps([{**STEP, "order": 1}]),
        "-f",
        "json",
    )
    bm("runbook", "trait", "add", runbook["uuid"], "CUSTOM_WIPE")
    assert bm("runbook", "show", "wipe-meta", "-f", "json")["traits"] == ["CUSTOM_WIPE"]
    node = bm("node", "create", "--driver", "fake-hardware", "--name", "rb-cli", "-f", "json")["uuid"]
    bm("node", "add", "trait", node, "CUSTOM_WIPE")
    bm("node", "manage", node, "--wait", "30")
    bm("node", "clean", node, "--runbook", "wipe-meta", "--wait", "30")
    assert bm("node", "show", node, "-f", "json")["provision_state"] == "manageable"
    rule = bm(
        "inspection", "rule", "create", "--priority", "5",
        "--conditions", json.dumps([{"op": "ge", "args": ["{inventory.memory.physical_mb}", 1024]}]),
        "--actions", json.dumps([{"op": "add-trait", "args": ["CUSTOM_BIG"]}]), "-f", "json",
    )  # fmt: skip
    assert bm("inspection", "rule", "show", rule["uuid"], "-f", "json")["actions"][0]["op"] == "add-trait"
    for args in (
        ("inspection", "rule", "delete", rule["uuid"]),
        ("node", "delete", node),
        ("runbook", "delete", runbook["uuid"]),
        ("deploy", "template", "delete", "CUSTOM_WIPE_META"),
    ):
        bm(*args)
