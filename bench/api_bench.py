"""kiln-api speed: GET /v1/nodes/detail over 1,000 and 10,000 nodes, and node-create throughput.

    python -m bench.api_bench [--sizes 1000,10000] [--creates 300] [--threads 8] [--db-url URL]

Serves the real app with cheroot on 127.0.0.1 (a free port), a conductor endpoint in-process over
kombu+memory, and SQLite in a temporary directory (or --db-url, e.g. PostgreSQL). Listing follows
the "next" links as clients do ([api]max_limit=1000 per page). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import tempfile
import threading
import time
import urllib.request

from oslo_config import cfg

from agent.api import app as api_app
from agent.cmd import api as api_cmd
from agent.common import config, rpc
from agent.conductor import hash_ring
from agent.conductor import rpcapi as conductor_rpcapi
from agent.conductor.manager import ConductorManager
from agent.db import api as db_api
from agent.db import engine as db_engine
from agent.db import migration
from agent.db.models import Node

CONF = cfg.CONF
HOST = "bench-conductor"
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest", "Content-Type": "application/json"}


def _request(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=HEADERS)
    with urllib.request.urlopen(req, timeout=120) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else {}


def _bulk_nodes(count: int, start: int) -> None:
    """Insert nodes straight into the database (the listing bench needs many, fast)."""
    import uuid

    rows = [
        {
            "uuid": str(uuid.uuid4()),
            "name": f"bench-{start + i:06d}",
            "driver": "fake-hardware",
            "provision_state": "available",
            "power_state": "power off",
            "resource_class": "gpu",
            "conductor_group": "",
            "properties": {"cpus": 128, "memory_mb": 2097152, "local_gb": 3500},
            "driver_info": {},
            "driver_internal_info": {},
            "instance_info": {},
            "extra": {"rack": f"r{i % 40}"},
            "maintenance": False,
            "protected": False,
            "retired": False,
            "console_enabled": False,
        }
        for i in range(count)
    ]
    with db_engine.session(write=True) as sess:
        sess.execute(Node.__table__.insert(), rows)


def _list_all(base: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    url, seen, pages = f"{base}/v1/nodes/detail", 0, 0
    while url:
        body = _request("GET", url)
        seen += len(body["nodes"])
        pages += 1
        url = body.get("next")
    return time.perf_counter() - started, seen, pages


def main(argv: list[str] | None = None) -> int:
    """Run the API benchmarks and print the figures."""
    parser = argparse.ArgumentParser(prog="api_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="fleet sizes to list (comma-separated)")
    parser.add_argument("--creates", type=int, default=300, help="nodes created through POST /v1/nodes")
    parser.add_argument("--threads", type=int, default=8, help="concurrent clients creating nodes")
    parser.add_argument("--repeat", type=int, default=3, help="listings per size (median reported)")
    parser.add_argument("--db-url", help="database URL (default: SQLite in a temporary directory)")
    args = parser.parse_args(argv)

    config.register_opts(CONF)
    CONF([], project="kiln")
    CONF.set_override("host", HOST, group="conductor")
    tmp = tempfile.TemporaryDirectory(prefix="kiln-api-bench-")
    db_api.configure(args.db_url or f"sqlite:///{tmp.name}/kiln.sqlite")
    migration.upgrade()
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
    print(
        f"kiln-api bench: {base}, database {db_engine.get_engine().url.render_as_string(hide_password=True)}"
    )

    try:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
            list(
                pool.map(
                    lambda i: _request(
                        "POST", f"{base}/v1/nodes", {"driver": "fake-hardware", "name": f"c-{i}"}
                    ),
                    range(args.creates),
                )
            )
        elapsed = time.perf_counter() - started
        print(
            f"POST /v1/nodes: {args.creates} nodes with {args.threads} clients in {elapsed:.2f} s "
            f"= {args.creates / elapsed:.0f} nodes/s"
        )
        have = args.creates
        for size in sorted(int(s) for s in args.sizes.split(",")):
            if size > have:
                _bulk_nodes(size - have, have)
                have = size
            times = []
            for _ in range(args.repeat):
                took, seen, pages = _list_all(base)
                times.append(took)
            median = statistics.median(times)
            print(
                f"GET /v1/nodes/detail, {seen} nodes ({pages} pages of <= {CONF.api.max_limit}): "
                f"median {median * 1000:.0f} ms = {seen / median:.0f} nodes/s (of {args.repeat})"
            )
    finally:
        http.stop()
        rpc.stop_server(server, 5)
        transport.cleanup()
        db_api.dispose()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
