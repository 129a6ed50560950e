"""The GPU acceptance gate in automated cleaning, and the quarantine of a node that fails it.

The real conductor and the real agent endpoint and step runner over the in-memory bus
(deploy_stack). The simulated node is the "vm" tree (its disk is a file) carrying the GPUs,
NVSwitches and kernel log of a GPU fixture tree; NVML facts come through its stand-in.
"""

from __future__ import annotations

import copy
import time

import pytest
import webtest
from oslo_config import cfg
from oslo_messaging.rpc.dispatcher import ExpectedException

from agent.api import app as api_app
from agent.common import exception, states
from agent.conductor import cleaning, gpu_acceptance, hash_ring
from agent.conductor import rpcapi as conductor_rpcapi
from agent.db import api as db_api
from tests.unit.common.test_gpu_gate import DEGRADED, EccNvml, FakeNvml, healthy_h100, inventory, with_nvml
from tests.unit.conductor.deploy_stack import Stack

CONF = cfg.CONF
GPU_KEYS = ("gpus", "nvswitches", "kernel_log")


@pytest.fixture
def stack(tmp_path):
    """The in-process stack with the gate on (above the metadata erase); the node is manageable."""
    s = Stack(tmp_path)
    CONF.set_override("verify_gpus_priority", 100, group="deploy")
    db_api.update_node(s.node.uuid, {"provision_state": states.MANAGEABLE, "resource_class": "gpu"})
    yield s
    s.close()
    CONF.clear_override("verify_gpus_priority", group="deploy")


def _node_with(stack, gpu_inventory: dict) -> dict:
    """The simulated node's own inventory with the GPU parts of ``gpu_inventory``."""
    agent = stack.agent or stack.boot_agent()
    inv = copy.deepcopy(agent.inventory)
    for key in GPU_KEYS:
        inv.pop(key, None)
        if key in gpu_inventory:
            inv[key] = copy.deepcopy(gpu_inventory[key])
    return inv


def _accept_first_inventory(stack, gpu_inventory: dict) -> None:
    """The agent reports its inventory (the node's first): it becomes the node's GPU baseline."""
    agent = stack.boot_agent()
    agent.inventory = _node_with(stack, gpu_inventory)
    assert agent.report_inventory()["stored"] is True
    baseline = stack.node_now().driver_internal_info[gpu_acceptance.INFO_GPU_BASELINE]
    assert baseline["count"] == len(gpu_inventory["gpus"])


def _clean(stack, gpu_inventory: dict):
    """Provide the node while its GPUs are ``gpu_inventory``'s; return it once cleaning ends."""
    stack.agent.inventory = _node_with(stack, gpu_inventory)
    stack.manager.change_provision_state({}, stack.node.uuid, "provide")
    node = stack.wait_state(states.CLEANWAIT)
    assert [s["step"] for s in node.driver_internal_info[cleaning.STEPS_KEY]] == [
        "verify_gpus",
        "erase_devices_metadata",
    ]
    stack.boot_agent()
    return stack.drive(states.AVAILABLE, states.CLEANFAIL)


def _without_gpu(inv: dict, index: int) -> dict:
    inv["gpus"].pop(index)
    return inv


def _ecc() -> dict:
    return with_nvml(healthy_h100(), EccNvml())


def _remap() -> dict:
    return with_nvml(healthy_h100(), FakeNvml())


CASES = {
    # name: (the first accepted inventory, the GPUs found at cleaning, (check, GPU) named in the reason)
    "degraded link and Xids": (healthy_h100, lambda: inventory("hgx-h100"), ("pcie_link", DEGRADED)),
    "missing GPU": (healthy_h100, lambda: _without_gpu(healthy_h100(), 3), ("missing", "0000:5c:00.0")),
    "new GPU": (lambda: _without_gpu(healthy_h100(), 0), healthy_h100, ("new", "0000:18:00.0")),
    "uncorrectable ECC": (healthy_h100, _ecc, ("ecc", "0000:18:00.0")),
    "pending row remap": (healthy_h100, _remap, ("row_remap", "0000:18:00.0")),
    "AMD RAS": (lambda: inventory("mi300x"), lambda: inventory("mi300x"), ("ecc", "0000:43:00.0")),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failed_gate_quarantines_the_node(stack, case) -> None:
    first, now, (check, address) = CASES[case]
    _accept_first_inventory(stack, first())
    node = _clean(stack, now())
    assert node.provision_state == states.CLEANFAIL
    assert node.maintenance is True
    assert gpu_acceptance.TRAIT_QUARANTINE in node.traits
    serial = next((g["serial"] for g in now()["gpus"] + first()["gpus"] if g["pci_address"] == address), None)
    named = f"GPU {address} (serial {serial or 'unknown'}): {check}: "
    assert node.maintenance_reason.startswith("GPU acceptance gate failed: ")
    assert named in node.maintenance_reason
    assert "Clean step verify_gpus failed" in node.last_error and named in node.last_error
    assert node.power_state == states.POWER_OFF
    assert cleaning.STEPS_KEY not in node.driver_internal_info


def test_the_degraded_h100_names_its_serial_from_nvml(stack) -> None:
    _accept_first_inventory(stack, healthy_h100())
    node = _clean(stack, _ecc())
    assert (
        "GPU 0000:18:00.0 (serial 1654024075039): ecc: 1 uncorrectable ECC error(s)"
        in node.maintenance_reason
    )


def test_a_healthy_node_passes_and_later_inventories_keep_the_first_baseline(stack) -> None:
    _accept_first_inventory(stack, healthy_h100())
    stack.agent.inventory = _node_with(stack, _without_gpu(healthy_h100(), 7))
    stack.agent.report_inventory()  # stored, but the baseline stays the first inventory's
    assert stack.node_now().driver_internal_info[gpu_acceptance.INFO_GPU_BASELINE]["count"] == 8
    node = _clean(stack, healthy_h100())
    assert node.provision_state == states.AVAILABLE, node.last_error
    assert not node.maintenance and gpu_acceptance.TRAIT_QUARANTINE not in node.traits


def test_properties_override_the_baseline(stack) -> None:
    _accept_first_inventory(stack, healthy_h100())
    db_api.update_node(stack.node.uuid, {"properties": {"gpu_count": "8", "gpu_sku": "h200_sxm5_141gb"}})
    node = _clean(stack, healthy_h100())
    assert node.provision_state == states.CLEANFAIL
    assert "sku: SKU is H100_SXM5_80GB, expected H200_SXM5_141GB" in node.maintenance_reason


def test_a_bad_gpu_count_property_fails_cleaning_naming_it(stack) -> None:
    stack.boot_agent()
    db_api.update_node(stack.node.uuid, {"properties": {"gpu_count": "eight"}})
    stack.manager.change_provision_state({}, stack.node.uuid, "provide")
    node = stack.wait_state(states.CLEANFAIL)
    assert "property gpu_count must be a whole number of GPUs, not 'eight'" in node.last_error
    assert not node.maintenance  # not the GPUs' fault: no quarantine


def _allocate(stack) -> dict:
    alloc = stack.manager.create_allocation({}, {"resource_class": "gpu"})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = db_api.get_allocation(alloc["uuid"])
        if found.state != "allocating":
            return found
        time.sleep(0.05)
    raise AssertionError("allocation did not finish")


def test_quarantine_holds_until_the_operator_removes_the_trait(stack) -> None:
    _accept_first_inventory(stack, healthy_h100())
    assert _clean(stack, inventory("hgx-h100")).provision_state == states.CLEANFAIL
    # The operator repairs the GPU, takes the node out of maintenance and cleans it again.
    stack.manager.update_node({}, stack.node.uuid, {"maintenance": False, "maintenance_reason": None})
    stack.manager.change_provision_state({}, stack.node.uuid, "manage")
    stack.wait_state(states.MANAGEABLE)
    node = _clean(stack, healthy_h100())
    assert node.provision_state == states.AVAILABLE, node.last_error
    assert gpu_acceptance.TRAIT_QUARANTINE in node.traits  # Kiln never clears it
    refused = _allocate(stack)
    assert refused.state == "error" and "not GPU-quarantined" in refused.last_error
    agent = stack.boot_agent()
    agent.inventory = _node_with(stack, _without_gpu(healthy_h100(), 7))
    assert agent.report_inventory()["stored"]  # a new inventory does not drop the trait either
    assert gpu_acceptance.TRAIT_QUARANTINE in stack.node_now().traits
    stack.manager.remove_node_trait({}, stack.node.uuid, gpu_acceptance.TRAIT_QUARANTINE)
    granted = _allocate(stack)
    assert granted.state == "active" and granted.node_id == stack.node.id


def _replaced_gpu() -> dict:
    inv = inventory("mi300x")
    inv["gpus"][0]["serial"] = "692325999999"
    return inv


def _healthy_mi300x(inv: dict) -> dict:
    for gpu in inv["gpus"]:
        gpu["health"]["ras"] = {block: {"ue": 0, "ce": 0} for block in gpu["health"]["ras"]}
    return inv


def test_a_replaced_gpu_is_accepted_by_a_manual_update_baseline(stack) -> None:
    _accept_first_inventory(stack, _healthy_mi300x(inventory("mi300x")))
    node = _clean(stack, _healthy_mi300x(_replaced_gpu()))
    assert "GPU 0000:03:00.0 (serial 692325999999): new: GPU serial 692325999999 replaced" in (
        node.maintenance_reason
    )
    stack.manager.update_node({}, stack.node.uuid, {"maintenance": False})
    stack.manager.change_provision_state({}, stack.node.uuid, "manage")
    stack.wait_state(states.MANAGEABLE)
    step = {"interface": "deploy", "step": "verify_gpus", "args": {"update_baseline": True}}
    stack.manager.change_provision_state({}, stack.node.uuid, "clean", clean_steps=[step])
    stack.wait_state(states.CLEANWAIT)
    stack.boot_agent()
    node = stack.drive(states.MANAGEABLE, states.CLEANFAIL)
    assert node.provision_state == states.MANAGEABLE, node.last_error
    baseline = node.driver_internal_info[gpu_acceptance.INFO_GPU_BASELINE]
    assert baseline["gpus"]["0000:03:00.0"]["serial"] == "692325999999"
    assert _clean(stack, _healthy_mi300x(_replaced_gpu())).provision_state == states.AVAILABLE


def test_update_baseline_must_be_a_boolean(stack) -> None:
    step = {"interface": "deploy", "step": "verify_gpus", "args": {"update_baseline": "yes"}}
    with pytest.raises(ExpectedException) as err:
        stack.manager.change_provision_state({}, stack.node.uuid, "clean", clean_steps=[step])
    assert isinstance(err.value.exc_info[1], exception.InvalidParameterValue)
    assert "verify_gpus: args.update_baseline must be true or false" in str(err.value.exc_info[1])
    assert stack.node_now().provision_state == states.MANAGEABLE


@pytest.mark.usefixtures("db")
@pytest.mark.parametrize(
    ("props", "wanted"),
    [
        ({}, None),
        ({"gpu_count": 8}, {"count": 8}),
        ({"gpu_count": "4", "gpu_sku": "CUSTOM_GPU_H100_SXM5_80GB"}, {"count": 4, "sku": "H100_SXM5_80GB"}),
        ({"gpu_sku": " h200_sxm5_141gb "}, {"sku": "H200_SXM5_141GB"}),
    ],
)
def test_expectation_from_properties_alone(props, wanted) -> None:
    node = db_api.create_node({"driver": "fake-hardware", "properties": props})
    assert gpu_acceptance.expectation(db_api.get_node(node.uuid)) == wanted


@pytest.mark.usefixtures("db")
@pytest.mark.parametrize(("props", "named"), [({"gpu_count": -1}, "gpu_count"), ({"gpu_sku": ""}, "gpu_sku")])
def test_bad_gpu_properties_are_named(props, named) -> None:
    node = db_api.create_node({"driver": "fake-hardware", "properties": props})
    with pytest.raises(exception.InvalidParameterValue, match=f"Node {node.uuid}: property {named} must"):
        gpu_acceptance.expectation(db_api.get_node(node.uuid))


def test_node_show_tells_the_operator_why(stack) -> None:
    """`baremetal node show` (GET /v1/nodes/{node} through the real API and conductor RPC)."""
    _accept_first_inventory(stack, healthy_h100())
    _clean(stack, inventory("hgx-h100"))
    client = conductor_rpcapi.ConductorAPI(
        transport=stack.transport, timeout=10, ring=hash_ring.HashRingManager(reset_interval=0)
    )
    api = webtest.TestApp(api_app.build_app(client, auth_strategy="noauth"))
    api.extra_environ = {"HTTP_X_OPENSTACK_IRONIC_API_VERSION": "latest"}
    shown = api.get(f"/v1/nodes/{stack.node.uuid}").json
    assert shown["provision_state"] == states.CLEANFAIL and shown["maintenance"] is True
    reason = f"GPU {DEGRADED} (serial unknown): pcie_link: PCIe link runs x8 at 32.0 GT/s PCIe, expected x16"
    assert reason in shown["maintenance_reason"] and reason in shown["last_error"]
    assert f"GPU {DEGRADED} (serial unknown): xid: Xid 48, 63, 79" in shown["maintenance_reason"]
    assert gpu_acceptance.TRAIT_QUARANTINE in api.get(f"/v1/nodes/{stack.node.uuid}/traits").json["traits"]


def test_a_node_enrolled_before_the_gate_takes_its_oldest_inventory_as_baseline(stack) -> None:
    _accept_first_inventory(stack, healthy_h100())
    agent = stack.agent
    agent.inventory = _node_with(stack, _without_gpu(healthy_h100(), 5))
    assert agent.report_inventory()["stored"]
    node = stack.node_now()  # as a node whose inventories were stored before the gate existed
    info = {k: v for k, v in node.driver_internal_info.items() if k != gpu_acceptance.INFO_GPU_BASELINE}
    db_api.update_node(node.uuid, {"driver_internal_info": info})
    node = _clean(stack, _without_gpu(healthy_h100(), 5))
    assert node.provision_state == states.CLEANFAIL
    assert (
        "GPU 0000:ab:00.0 (serial unknown): missing: GPU expected here is missing" in node.maintenance_reason
    )
    assert node.driver_internal_info[gpu_acceptance.INFO_GPU_BASELINE]["count"] == 8
