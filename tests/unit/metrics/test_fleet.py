"""The fleet collector on a real SQLite database: nodes, GPUs and heartbeat ages as a scrape shows them."""

from __future__ import annotations

import datetime

import pytest
from oslo_utils import uuidutils
from prometheus_client import CollectorRegistry

from agent.db import api as db_api
from agent.db import inventory as db_inventory
from agent.db.models import utcnow
from agent.metrics.fleet import FleetCollector, gpu_state, gpus_by_sku
from tests.unit.metrics.conftest import scrape, value

H100 = "H100_SXM5_80GB"
MI300X = "MI300X_OAM_192GB"


def _gpus(sku: str, count: int, vfs: int = 0) -> list[dict]:
    gpus = [{"pci_address": f"0000:{i + 1:02x}:00.0", "sku": {"trait": sku}} for i in range(count)]
    gpus += [{"pci_address": f"0000:{i + 1:02x}:00.1", "is_virtual_function": True} for i in range(vfs)]
    return gpus


def _node(state: str, gpus: list[dict] | None = None, **values) -> object:
    node = db_api.create_node({"driver": "fake-hardware", "provision_state": state, **values})
    if gpus is not None:
        db_inventory.store_inventory(node.id, {"gpus": gpus})
    return node


@pytest.fixture
def registry(db):
    """A registry holding a fresh FleetCollector."""
    reg = CollectorRegistry()
    reg.register(FleetCollector())
    return reg


def test_nodes_by_provision_state_power_maintenance_and_quarantine(registry) -> None:
    for _ in range(3):
        _node("available", power_state="power off")
    _node("active", power_state="power on")
    _node("clean failed", power_state="power off", maintenance=True, traits=["CUSTOM_GPU_QUARANTINE"])
    _node("manageable", maintenance=True)
    _node("enroll")

    samples = scrape(registry)

    labels = {"maintenance": "false", "quarantined": "false"}
    assert value(samples, "kiln_nodes", provision_state="available", power_state="power off", **labels) == 3
    assert value(samples, "kiln_nodes", provision_state="active", power_state="power on", **labels) == 1
    assert (
        value(
            samples,
            "kiln_nodes",
            provision_state="clean failed",
            power_state="power off",
            maintenance="true",
            quarantined="true",
        )
        == 1
    )
    assert (
        value(
            samples,
            "kiln_nodes",
            provision_state="manageable",
            power_state="none",
            maintenance="true",
            quarantined="false",
        )
        == 1
    )
    assert sum(v for (name, _), v in samples.items() if name == "kiln_nodes") == 7
    assert value(samples, "kiln_fleet_scrape_success") == 1


def test_gpus_by_sku_and_state_show_idle_allocated_and_quarantined(registry) -> None:
    _node("available", _gpus(H100, 8, vfs=4))
    _node("available", _gpus(H100, 8))
    _node("active", _gpus(H100, 8), instance_uuid=uuidutils.generate_uuid())
    reserved = _node("available", _gpus(MI300X, 8))
    db_api.create_allocation(
        {"name": "job-1", "resource_class": "gpu", "node_id": reserved.id, "state": "active"}
    )
    _node("clean failed", _gpus(MI300X, 4), maintenance=True, traits=["CUSTOM_GPU_QUARANTINE"])
    _node("available", _gpus(H100, 2), maintenance=True)
    _node("manageable", [{"pci_address": "0000:09:00.0", "sku": {"trait": "NOT_IN_CATALOGUE"}}, {}])
    _node("available")  # no inventory: no GPUs

    samples = scrape(registry)

    assert value(samples, "kiln_gpus", sku=H100, state="available") == 16  # VFs are not GPUs
    assert value(samples, "kiln_gpus", sku=H100, state="allocated") == 8
    assert value(samples, "kiln_gpus", sku=MI300X, state="allocated") == 8
    assert value(samples, "kiln_gpus", sku=MI300X, state="quarantined") == 4
    assert value(samples, "kiln_gpus", sku=H100, state="unavailable") == 2
    assert value(samples, "kiln_gpus", sku="unknown", state="unavailable") == 2
    assert sum(v for (name, _), v in samples.items() if name == "kiln_gpus") == 40


def test_gpu_counts_follow_new_inventories_and_deleted_nodes(registry) -> None:
    first = _node("available", _gpus(H100, 8))
    second = _node("available", _gpus(H100, 8))
    assert value(scrape(registry), "kiln_gpus", sku=H100, state="available") == 16

    db_inventory.store_inventory(first.id, {"gpus": _gpus(H100, 7)})  # a GPU fell off the bus
    db_api.destroy_node(second.uuid)
    db_api.update_node(first.uuid, {"instance_uuid": uuidutils.generate_uuid()})
    samples = scrape(registry)

    assert value(samples, "kiln_gpus", sku=H100, state="available") == 0
    assert value(samples, "kiln_gpus", sku=H100, state="allocated") == 7


def test_heartbeat_age_is_a_histogram_over_nodes(registry) -> None:
    now = utcnow()
    for seconds, state in ((5, "clean wait"), (100, "clean wait"), (4000, "clean wait"), (20, "active")):
        node = _node(state)
        db_api.update_node(node.uuid, {"last_heartbeat_at": now - datetime.timedelta(seconds=seconds)})
    _node("enroll")  # never heartbeat: not in the histogram

    samples = scrape(registry)

    name = "kiln_node_heartbeat_age_seconds"
    assert value(samples, name + "_bucket", provision_state="clean wait", le="10.0") == 1
    assert value(samples, name + "_bucket", provision_state="clean wait", le="120.0") == 2
    assert value(samples, name + "_bucket", provision_state="clean wait", le="3600.0") == 2
    assert value(samples, name + "_bucket", provision_state="clean wait", le="+Inf") == 3
    assert value(samples, name + "_count", provision_state="clean wait") == 3
    assert 4105 <= value(samples, name + "_sum", provision_state="clean wait") < 4150
    assert value(samples, name + "_count", provision_state="active") == 1
    assert value(samples, name + "_count", provision_state="enroll") == 0


def test_conductors_online_and_offline(registry) -> None:
    db_api.register_conductor("cond-a", ["fake-hardware"])
    db_api.register_conductor("cond-b", ["fake-hardware"])
    db_api.unregister_conductor("cond-b")

    samples = scrape(registry)

    assert value(samples, "kiln_conductors", online="true") == 1
    assert value(samples, "kiln_conductors", online="false") == 1


def test_a_database_without_the_schema_scrapes_as_a_failure(tmp_path) -> None:
    db_api.configure(f"sqlite:///{tmp_path}/empty.sqlite")
    try:
        registry = CollectorRegistry()
        registry.register(FleetCollector())
        samples = scrape(registry)
    finally:
        db_api.dispose()
    assert value(samples, "kiln_fleet_scrape_success") == 0
    assert not [name for name, _ in samples if name.startswith("kiln_nodes")]


def test_gpu_state_rules() -> None:
    assert gpu_state("available", False, False, False) == "available"
    assert gpu_state("available", True, False, False) == "unavailable"
    assert gpu_state("available", False, True, False) == "allocated"
    assert gpu_state("wait call-back", False, False, False) == "allocated"
    assert gpu_state("active", True, True, True) == "quarantined"
    assert gpu_state("cleaning", False, False, False) == "unavailable"


def test_gpus_by_sku_takes_only_catalogue_skus() -> None:
    gpus = _gpus(H100, 2, vfs=1) + [{"sku": {"trait": "x" * 300}}, {"sku": "H100"}, "garbage", None]
    assert gpus_by_sku(gpus) == {H100: 2, "unknown": 2}
    assert gpus_by_sku(None) == {}
    assert gpus_by_sku({"gpus": 3}) == {}
