"""kiln-api's /metrics fleet read over a large fleet, against reading every stored inventory per scrape.

    python -m bench.metrics_bench [--nodes 10000] [--runs 5] [--db-url URL]

Enrolls ``--nodes`` nodes (each with the 8-GPU ``hgx-h100`` fixture's inventory, about 53 kB, a
heartbeat, and a spread of states) into SQLite in a temporary directory (or --db-url), then times
FleetCollector.collect: the first scrape (every inventory's GPUs read), later scrapes (median of
--runs; nothing changed), and a scrape after 1% of the inventories changed. The baseline is the
obvious collector: each scrape loads every node's full inventory and counts its GPUs in Python.
Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from oslo_utils import uuidutils
from sqlalchemy import insert, select, update

from agent.db import api as db_api
from agent.db import engine as db_engine
from agent.db import migration
from agent.db.models import Node, NodeInventory, utcnow
from agent.inventory.collect import collect
from agent.metrics.fleet import FleetCollector, gpus_by_sku

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREE = os.path.join(REPO, "tests", "fixtures", "sysfs", "hgx-h100")
STATES = ("available", "active", "active", "active", "clean wait", "manageable", "deploying")
BATCH = 1000


def enroll(count: int, inventory: dict) -> None:
    """``count`` nodes with ``inventory``, in batches."""
    now = utcnow()
    for start in range(0, count, BATCH):
        rows = [
            {
                "uuid": uuidutils.generate_uuid(),
                "name": f"gpu-{i:05d}",
                "driver": "fake-hardware",
                "provision_state": STATES[i % len(STATES)],
                "power_state": "power on",
                "maintenance": i % 50 == 0,
                "conductor_group": "",
                "protected": False,
                "retired": False,
                "console_enabled": False,
                "last_heartbeat_at": now,
            }
            for i in range(start, min(start + BATCH, count))
        ]
        with db_engine.session(write=True) as sess:
            sess.execute(insert(Node), rows)
            ids = sess.scalars(select(Node.id).where(Node.name.in_([r["name"] for r in rows]))).all()
            sess.execute(
                insert(NodeInventory),
                [{"node_id": i, "inventory": inventory, "created_at": now} for i in ids],
            )


def naive_scrape() -> dict:
    """The baseline: every node's full inventory read and its GPUs counted, at every scrape."""
    totals: dict = {}
    with db_engine.get_engine().connect() as conn:
        rows = conn.execute(
            select(Node.provision_state, NodeInventory.inventory).join(
                NodeInventory, NodeInventory.node_id == Node.id
            )
        )
        for state, inventory in rows:
            for sku, count in gpus_by_sku((inventory or {}).get("gpus")).items():
                totals[(sku, state)] = totals.get((sku, state), 0) + count
    return totals


def timed(func: Callable[[], object]) -> float:
    """Seconds one call of ``func`` takes."""
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-metrics-bench-") as tmp:
        db_api.configure(args.db_url or f"sqlite:///{tmp}/kiln.sqlite")
        migration.upgrade()
        inventory = collect(TREE, use_nvml=False)
        started = time.perf_counter()
        enroll(args.nodes, inventory)
        print(f"enrolled {args.nodes} nodes with 8 GPUs each in {time.perf_counter() - started:.1f} s")
        collector = FleetCollector()

        def scrape() -> None:
            list(collector.collect())

        cold = timed(scrape)
        warm = statistics.median(timed(scrape) for _ in range(args.runs))
        with db_engine.session(write=True) as sess:
            changed = select(NodeInventory.node_id).where(NodeInventory.node_id % 100 == 0)
            sess.execute(
                update(NodeInventory).where(NodeInventory.node_id.in_(changed)).values(created_at=utcnow())
            )
        after_change = timed(scrape)
        naive = statistics.median(timed(naive_scrape) for _ in range(args.runs))
        db_api.dispose()
    print(f"{'scrape':<44}{'seconds':>10}{'vs baseline':>14}")
    print(f"{'baseline: every inventory read per scrape':<44}{naive:>10.3f}{'1.00x':>14}")
    for label, seconds in (
        ("kiln, first scrape (all GPUs read)", cold),
        ("kiln, later scrape (median)", warm),
        ("kiln, scrape after 1% of inventories changed", after_change),
    ):
        print(f"{label:<44}{seconds:>10.3f}{naive / seconds:>13.1f}x")


if __name__ == "__main__":
    main()
