"""`baremetal port group ...` and `baremetal node vif ...` (python-ironicclient) and openstacksdk
against kiln-api + kiln-conductor over RabbitMQ."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import openstack.config
import pytest
from openstack import connection, exceptions


@pytest.fixture(scope="module")
def cli(kiln):
    """Run the `baremetal` CLI against kiln-api; returns run(*args, ok=True) -> CompletedProcess."""
    # The CLI sits beside this interpreter when the venv's bin is not on PATH.
    path = shutil.which("baremetal") or shutil.which("baremetal", path=os.path.dirname(sys.executable))
    if path is None:
        pytest.skip("python-ironicclient's baremetal CLI is not installed")
    env = {**os.environ, "OS_AUTH_TYPE": "none", "OS_ENDPOINT": kiln}
    env.pop("OS_CLOUD", None)

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([path, *args], env=env, capture_output=True, text=True, timeout=120)
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    return run


def _json(done: subprocess.CompletedProcess):
    return json.loads(done.stdout)


def test_port_group_commands(cli):
    node = _json(cli("node", "create", "--driver", "fake-hardware", "--name", "pg-cli", "-f", "json"))
    created = _json(
        cli(
            "port", "group", "create", "--node", node["uuid"], "--name", "bond0",
            "--address", "52:54:00:C0:FF:EE", "--mode", "802.3ad",
            "--property", "miimon=100", "--property", "xmit_hash_policy=layer3+4", "-f", "json",
        )
    )  # fmt: skip
    assert created["mode"] == "802.3ad"
    assert created["properties"] == {"miimon": 100, "xmit_hash_policy": "layer3+4"}
    assert created["address"] == "52:54:00:c0:ff:ee"
    listed = _json(cli("port", "group", "list", "-f", "json"))
    assert [(g["name"], g["address"]) for g in listed] == [("bond0", "52:54:00:c0:ff:ee")]
    shown = _json(cli("port", "group", "show", "bond0", "-f", "json"))
    assert (shown["uuid"], shown["node_uuid"], shown["mode"]) == (created["uuid"], node["uuid"], "802.3ad")
    port = _json(
        cli(
            "port",
            "create",
            "52:54:00:00:00:a1",
            "--node",
            node["uuid"],
            "--port-group",
            "bond0",
            "-f",
            "json",
        )
    )
    assert port["portgroup_uuid"] == created["uuid"]
    members = _json(cli("port", "list", "--port-group", "bond0", "-f", "json"))
    assert [p["address"] for p in members] == ["52:54:00:00:00:a1"]
    cli("port", "group", "set", "bond0", "--mode", "balance-rr")
    assert _json(cli("port", "group", "show", "bond0", "-f", "json"))["mode"] == "balance-rr"
    refused = cli("port", "group", "delete", "bond0", ok=False)
    assert refused.returncode != 0
    assert "contains ports" in refused.stderr
    cli("port", "delete", port["uuid"])
    cli("port", "group", "delete", "bond0")
    assert _json(cli("port", "group", "list", "-f", "json")) == []
    cli("node", "delete", "pg-cli")


def test_node_vif_commands(cli):
    node = _json(
        cli("node", "create", "--driver", "fake-hardware", "--name", "vif-cli", "--owner", "project-a",
            "--network-interface", "flat", "-f", "json")
    )  # fmt: skip
    cli("port", "create", "52:54:00:00:00:b1", "--node", node["uuid"])
    cli("port", "create", "52:54:00:00:00:b2", "--node", node["uuid"])
    cli("node", "vif", "attach", "vif-cli", "tenant-a")
    assert _json(cli("node", "vif", "list", "vif-cli", "-f", "json")) == [{"id": "tenant-a"}]
    ports = _json(cli("port", "list", "--node", "vif-cli", "--long", "-f", "json"))
    infos = sorted((p["address"], p["internal_info"]) for p in ports)
    assert infos[0] == ("52:54:00:00:00:b1", {"tenant_vif_port_id": "tenant-a"})
    refused = cli("node", "vif", "attach", "vif-cli", "tenant-b", ok=False)
    assert refused.returncode != 0
    assert "Network tenant-b belongs to project project-b" in refused.stderr
    assert "used by project project-a" in refused.stderr
    unknown = cli("node", "vif", "attach", "vif-cli", "elsewhere", ok=False)
    assert "Network elsewhere is not declared" in unknown.stderr
    cli("node", "vif", "detach", "vif-cli", "tenant-a")
    assert _json(cli("node", "vif", "list", "vif-cli", "-f", "json")) == []
    cli("node", "delete", "vif-cli")


def test_sdk_port_groups_and_vifs(kiln):
    region = openstack.config.get_cloud_region(
        auth_type="none", baremetal_endpoint_override=kiln, load_yaml_config=False, load_envvars=False
    )
    bm = connection.Connection(config=region).baremetal
    node = bm.create_node(driver="fake-hardware", name="sdk-net", owner="project-a", network_interface="flat")
    group = bm.create_port_group(node_id=node.id, name="sdk-bond", mode="active-backup")
    bm.create_port(address="52:54:00:00:00:c1", node_id=node.id, port_group_id=group.id)
    assert [p.address for p in bm.ports(port_group=group.id)] == ["52:54:00:00:00:c1"]
    bm.attach_vif_to_node(node, "tenant-a")
    assert bm.list_node_vifs(node) == ["tenant-a"]
    assert bm.get_port_group(group.id).internal_info == {"tenant_vif_port_id": "tenant-a"}
    with pytest.raises(exceptions.ConflictException):
        bm.attach_vif_to_node(node, "tenant-a")
    bm.detach_vif_from_node(node, "tenant-a")
    assert bm.list_node_vifs(node) == []
    bm.delete_node(node)
