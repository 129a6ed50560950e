"""The fleet page's speed on a large fleet, against the API's own JSON listing of the same page.

    python -m bench.fleet_page_bench [--nodes 10000] [--repeat 7] [--db-url URL]

Bulk-inserts ``--nodes`` nodes, each with the stored inventory and traits of one of kiln-demo's
fixture trees in turn (HGX H100, MI300X, SAS storage, VM), into SQLite in a temporary directory
(or --db-url), and serves the real app with cheroot on 127.0.0.1. Times, median of ``--repeat``:
GET /fleet (the first 100 nodes, no filter), /fleet?sku=H100_SXM5_80GB&quarantine=no, the last
page (by marker), /fleet/nodes/<an HGX node>; baseline: GET /v1/nodes/detail?limit=100, the same
100 nodes as JSON. Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.request

from oslo_config import cfg
from sqlalchemy import select

from agent.api import app as api_app
from agent.cmd import api as api_cmd
from agent.common import config, rpc
from agent.conductor import hash_ring
from agent.conductor import rpcapi as conductor_rpcapi
from agent.conductor.manager import ConductorManager
from agent.conductor.traits import derive_traits
from agent.db import api as db_api
from agent.db import engine as db_engine
from agent.db import migration
from agent.db.models import Node, NodeInventory, NodeTrait
from agent.inventory import collect
from bench.api_bench import _bulk_nodes

CONF = cfg.CONF
TREES = ("hgx-h100", "mi300x", "storage-sas", "vm")
FIXTURES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fixtures", "sysfs"
)
CHUNK = 500
HOST = "bench-conductor"


def _fill(count: int) -> str:
    """``count`` nodes with inventories and traits; the UUID of the first HGX node."""
    inventories = [collect.collect(os.path.join(FIXTURES, t), use_nvml=False) for t in TREES]
    traits = [derive_traits(inv) for inv in inventories]
    _bulk_nodes(count, 0)
    with db_engine.session(write=True) as sess:
        ids = list(sess.scalars(select(Node.id).order_by(Node.id)))
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            sess.execute(
                NodeInventory.__table__.insert(),
                [{"node_id": i, "inventory": inventories[i % len(TREES)]} for i in chunk],
            )
            sess.execute(
                NodeTrait.__table__.insert(),
                [{"node_id": i, "trait": t} for i in chunk for t in traits[i % len(TREES)]],
            )
        hgx = next(i for i in ids if i % len(TREES) == 0)
        return sess.scalar(select(Node.uuid).where(Node.id == hgx))


def _get(url: str) -> tuple[float, bytes]:
    req = urllib.request.Request(url, headers={"X-OpenStack-Ironic-API-Version": "latest"})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as resp:
        body = resp.read()
    return time.perf_counter() - started, body


def _median(url: str, repeat: int) -> tuple[float, int]:
    _get(url)  # warm: templates compiled, caches filled
    times, size = [], 0
    for _ in range(repeat):
        took, body = _get(url)
        times.append(took)
        size = len(body)
    return statistics.median(times), size


def main(argv: list[str] | None = None) -> int:
    """Run the fleet page benchmark and print the figures."""
    parser = argparse.ArgumentParser(prog="fleet_page_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10000, help="fleet size")
    parser.add_argument("--repeat", type=int, default=7, help="requests per page (median reported)")
    parser.add_argument("--db-url", help="database URL (default: SQLite in a temporary directory)")
    args = parser.parse_args(argv)

    config.register_opts(CONF)
    CONF([], project="kiln")
    tmp = tempfile.TemporaryDirectory(prefix="kiln-fleet-bench-")
    db_api.configure(args.db_url or f"sqlite:///{tmp.name}/kiln.sqlite")
    migration.upgrade()
    CONF.set_override("host", HOST, group="conductor")
    db_api.register_conductor(HOST, ["fake-hardware"])
    transport = rpc.get_transport(CONF, url="kombu+memory:////")
    server = rpc.get_server(transport, rpc.CONDUCTOR_TOPIC, HOST, [ConductorManager(HOST)])
    server.start()
    client = conductor_rpcapi.ConductorAPI(transport=transport, timeout=60, ring=hash_ring.HashRingManager())
    CONF.set_override("host_ip", "127.0.0.1", group="api")
    CONF.set_override("port", 0, group="api")
    http = api_cmd.make_server(api_app.build_app(client, auth_strategy="noauth"))
    http.prepare()
    threading.Thread(target=http.serve, daemon=True).start()
    base = f"http://127.0.0.1:{http.bind_addr[1]}"
    try:
        started = time.perf_counter()
        hgx = _fill(args.nodes)
        print(
            f"fleet page bench: {args.nodes} nodes with inventories stored "
            f"in {time.perf_counter() - started:.1f} s"
        )
        baseline, _ = _median(f"{base}/v1/nodes/detail?limit=100", args.repeat)
        print(f"baseline GET /v1/nodes/detail?limit=100 (JSON): median {baseline * 1000:.1f} ms")
        last = json.loads(_get(f"{base}/v1/nodes?limit=1&sort_key=name&sort_dir=desc")[1])["nodes"][0]
        page_before_last = f"/fleet?limit=100&marker={_marker_before(last['name'])}"
        for label, path in (
            ("GET /fleet (first 100 of all)", "/fleet"),
            ("GET /fleet?sku=H100_SXM5_80GB&quarantine=no", "/fleet?sku=H100_SXM5_80GB&quarantine=no"),
            ("GET /fleet, the last page (marker)", page_before_last),
            ("GET /fleet/nodes/<HGX node>", f"/fleet/nodes/{hgx}"),
        ):
            took, size = _median(base + path, args.repeat)
            print(
                f"{label}: median {took * 1000:.1f} ms, {size // 1024} KiB "
                f"= {took / baseline:.2f}x the baseline"
            )
    finally:
        http.stop()
        rpc.stop_server(server, 5)
        transport.cleanup()
        db_api.dispose()
        tmp.cleanup()
    return 0


def _marker_before(last_name: str) -> str:
    """The UUID of the node 100 places before ``last_name`` in name order (so the page is the last)."""
    with db_engine.session() as sess:
        names = sess.scalars(
            select(Node.uuid).where(Node.name < last_name).order_by(Node.name.desc()).limit(100)
        )
        return list(names)[-1]


if __name__ == "__main__":
    raise SystemExit(main())
