"""openstacksdk and the `baremetal` CLI against kiln-api + a conductor over RabbitMQ."""

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
def conn(kiln):
    """An openstacksdk connection with auth_type none and the endpoint overridden."""
    region = openstack.config.get_cloud_region(
        auth_type="none",
        baremetal_endpoint_override=kiln,
        load_yaml_config=False,
        load_envvars=False,
    )
    return connection.Connection(config=region)


def test_sdk_lifecycle(conn):
    bm = conn.baremetal
    node = bm.create_node(driver="fake-hardware", name="sdk-node", resource_class="gpu")
    assert node.provision_state == "enroll"
    bm.create_port(address="52:54:00:12:34:56", node_id=node.id)
    assert [p.address for p in bm.ports(node=node.id)] == ["52:54:00:12:34:56"]
    node = bm.set_node_provision_state(node, "manage", wait=True, timeout=60)
    assert node.provision_state == "manageable"
    node = bm.set_node_provision_state(node, "provide", wait=True, timeout=60)
    assert node.provision_state == "available"
    bm.add_node_trait(node, "CUSTOM_H100")
    assert bm.get_node(node.id).traits == ["CUSTOM_H100"]
    alloc = bm.create_allocation(resource_class="gpu", traits=["CUSTOM_H100"])
    alloc = bm.wait_for_allocation(alloc, timeout=60)
    assert alloc.state == "active"
    assert alloc.node_id == node.id
    node = bm.set_node_provision_state(
        node, "active", config_drive={"meta_data": {"hostname": "x"}}, wait=True, timeout=60
    )
    assert node.provision_state == "active"
    assert node.power_state == "power on"
    node = bm.set_node_provision_state(node, "deleted", wait=True, timeout=60)
    assert node.provision_state == "available"
    assert bm.get_node(node.id).instance_id is None
    with pytest.raises(exceptions.BadRequestException) as err:
        bm.set_node_provision_state(node, "inspect")
    assert "can not be performed on node" in str(err.value)
    with pytest.raises(exceptions.NotFoundException):
        bm.get_node("no-such-node")
    bm.set_node_maintenance(node, reason="test")
    assert bm.get_node(node.id).is_maintenance is True
    bm.delete_node(node)
    assert [n.name for n in bm.nodes()] == []


def test_baremetal_cli(kiln):
    # The CLI sits beside this interpreter when the venv's bin is not on PATH.
    cli = shutil.which("baremetal") or shutil.which("baremetal", path=os.path.dirname(sys.executable))
    if cli is None:
        pytest.skip("python-ironicclient's baremetal CLI is not installed")
    env = {**os.environ, "OS_AUTH_TYPE": "none", "OS_ENDPOINT": kiln}
    env.pop("OS_CLOUD", None)

    def run(*args: str) -> str:
        done = subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    created = json.loads(
        run("node", "create", "--driver", "fake-hardware", "--name", "cli-node", "-f", "json")
    )
    assert created["provision_state"] == "enroll"
    run("node", "manage", "cli-node", "--wait", "60")
    run("node", "provide", "cli-node", "--wait", "60")
    run("node", "deploy", "cli-node", "--wait", "60")
    shown = json.loads(run("node", "show", "cli-node", "-f", "json"))
    assert shown["provision_state"] == "active"
    run("node", "undeploy", "cli-node", "--wait", "60")
    listed = json.loads(run("node", "list", "-f", "json"))
    assert [(n["name"], n["provision_state"], n["power_state"]) for n in listed] == [
        ("cli-node", "available", "power off")
    ]
    bad = subprocess.run(
        [cli, "node", "create", "--driver", "no-such-driver"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert "no-such-driver" in bad.stderr
    run("node", "delete", "cli-node")
