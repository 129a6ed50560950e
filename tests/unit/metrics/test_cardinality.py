"""Series stay bounded: 10,000 nodes in every state give no more series than a few hundred do."""

from __future__ import annotations

import itertools
import re

from oslo_utils import uuidutils
from prometheus_client import CollectorRegistry
from sqlalchemy import insert, select

from agent.common import states
from agent.db import engine as db_engine
from agent.db.models import Node, NodeInventory, NodeTrait, utcnow
from agent.metrics.fleet import FleetCollector
from tests.unit.metrics.conftest import scrape

SKUS = ("H100_SXM5_80GB", "MI300X_OAM_192GB", "A100_SXM4_80GB", "NOT_A_SKU")
POWER = (states.POWER_ON, states.POWER_OFF, None)
#: Every combination of the fleet's labels: provision state x power x maintenance x quarantine.
COMBINATIONS = list(itertools.product(sorted(states.ALL_STATES), POWER, (False, True), (False, True)))
#: The most series the fleet may have, whatever its size (it is a few hundred for these combinations).
MAX_SERIES = 2000
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")


def _enroll(start: int, count: int) -> None:
    """``count`` nodes spread over every label combination, each with an inventory and a heartbeat."""
    now = utcnow()
    nodes = []
    for i in range(start, start + count):
        state, power, maintenance, _q = COMBINATIONS[i % len(COMBINATIONS)]
        nodes.append(
            {
                "uuid": uuidutils.generate_uuid(),
                "name": f"gpu-{i:05d}",
                "driver": "fake-hardware",
                "provision_state": state,
                "power_state": power,
                "maintenance": maintenance,
                "conductor_group": "",
                "protected": False,
                "retired": False,
                "console_enabled": False,
                "instance_uuid": uuidutils.generate_uuid() if i % 7 == 0 else None,
                "last_heartbeat_at": now,
            }
        )
    with db_engine.session(write=True) as sess:
        sess.execute(insert(Node), nodes)
        ids = dict(sess.execute(select(Node.name, Node.id)).all())
        sess.execute(
            insert(NodeInventory),
            [
                {
                    "node_id": ids[n["name"]],
                    "inventory": {
                        "gpus": [
                            {"pci_address": f"0000:{g:02x}:00.0", "sku": {"trait": SKUS[i % 4]}}
                            for g in range(8)
                        ]
                    },
                    "created_at": now,
                }
                for i, n in enumerate(nodes, start)
            ],
        )
        quarantined = [
            {"node_id": ids[n["name"]], "trait": "CUSTOM_GPU_QUARANTINE"}
            for i, n in enumerate(nodes, start)
            if COMBINATIONS[i % len(COMBINATIONS)][3]
        ]
        sess.execute(insert(NodeTrait), quarantined)


def _series(samples: dict) -> set:
    return {key for key in samples if key[0].startswith("kiln_")}


def test_series_do_not_grow_with_the_fleet(db) -> None:
    registry = CollectorRegistry()
    registry.register(FleetCollector())
    _enroll(0, len(COMBINATIONS))
    small = _series(scrape(registry))

    _enroll(len(COMBINATIONS), 10_000 - len(COMBINATIONS))
    samples = scrape(registry)
    large = _series(samples)

    assert sum(v for (name, _), v in samples.items() if name == "kiln_nodes") == 10_000
    assert sum(v for (name, _), v in samples.items() if name == "kiln_gpus") == 80_000
    assert large == small
    assert len(large) < MAX_SERIES
    values = {v for _name, labels in large for _k, v in labels}
    assert not [v for v in values if _UUID.search(v) or v.startswith("gpu-")]
