"""Simulated kiln-agents for bench.fleet_sim: one process heartbeats and reports for many nodes.

    python -m bench.fleet_agents --url URL --nodes FILE --out FILE [--interval 30]

FILE holds [[index, node uuid, agent token], ...]. Every node heartbeats once per --interval, its
beats spread evenly over the interval (pacing()), through the real ConductorClient.heartbeat, a
cast to the heartbeat topic as kiln-agent sends it (status: version, uptime_s, reports_acked,
watch). Each node reports its fixture inventory (one of tests/fixtures/sysfs, made its own: MACs,
system UUID, hostname) once at start with ConductorClient.report_inventory (a call, --report-threads
at once), then --changes nodes of this process per interval report a changed one (memory grows by
4 KiB). Runs until SIGTERM, then writes what it measured to --out as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "sysfs")
TREES = ("hgx-h100", "mi300x", "storage-sas", "vm")


def pacing(count: int, interval: float, start: float) -> list[float]:
    """When each of ``count`` nodes first beats: spread evenly over ``interval`` from ``start``."""
    if count <= 0:
        return []
    step = interval / count
    return [start + i * step for i in range(count)]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (nearest rank); NaN when there are none."""
    if not values:
        return float("nan")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must lie in [0, 100], got {q}")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n q / 100), at least the first value
    return ordered[int(rank) - 1]


class Agents:
    """The nodes of one process: their heartbeat loop and inventory reports."""

    def __init__(self, args: argparse.Namespace, nodes: list[list]) -> None:
        from oslo_config import cfg

        from agent.common import config, rpc
        from agent.node.conductor_client import ConductorClient

        conf = cfg.CONF
        config.register_opts(conf)
        conf([], project="kiln")
        self.args = args
        self.nodes = nodes
        self.transport = rpc.get_transport(conf, url=args.url)
        self.client = ConductorClient(self.transport, timeout=120)
        self.hb_topic = rpc.heartbeat_topic(rpc.CONDUCTOR_TOPIC)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.out: dict = {
            "nodes": len(nodes),
            "heartbeats": 0,
            "late_ms": [],  # how late each heartbeat left, against its schedule
            "report_ms": [],
            "changed_report_ms": [],
            "reports_done_s": None,
            "errors": [],
        }
        self.acked = 0

    def _error(self, what: str, exc: Exception) -> None:
        with self.lock:
            if len(self.out["errors"]) < 20:
                self.out["errors"].append(f"{what}: {type(exc).__name__}: {exc}"[:300])

    def _inventories(self) -> dict[int, dict]:
        from agent.inventory.collect import collect
        from bench.conductor_bench import agent_inventory

        bases = [collect(os.path.join(FIXTURES, t), use_nvml=False) for t in TREES]
        return {index: agent_inventory(bases[index % len(bases)], index) for index, _, _ in self.nodes}

    def heartbeats(self) -> None:
        """Beat for every node once per interval, evenly spread, until stopped."""
        due = pacing(len(self.nodes), self.args.interval, time.monotonic())
        late: list[float] = []
        sent = 0
        while not self.stop.is_set():
            for i, (_, node, token) in enumerate(self.nodes):
                wait = due[i] - time.monotonic()
                if wait > 0 and self.stop.wait(wait):
                    break
                late.append(max(0.0, -wait) * 1000)
                status = {
                    "version": "fleet-sim",
                    "uptime_s": round(time.monotonic() - self.started, 1),
                    "reports_acked": self.acked,
                    "watch": None,
                }
                try:
                    self.client.heartbeat({}, node, token, status, topic=self.hb_topic)
                    sent += 1
                except Exception as exc:  # noqa: BLE001 - counted; the loop goes on
                    self._error("heartbeat", exc)
                due[i] += self.args.interval
        with self.lock:
            self.out["heartbeats"] = sent
            self.out["late_ms"] = late

    def _report(self, node: str, token: str, inv: dict, changes: dict | None) -> float:
        started = time.perf_counter()
        self.client.report_inventory({}, node, token, inv, changes)
        return (time.perf_counter() - started) * 1000

    def reports(self) -> None:
        """Report every node's inventory once (--report-threads at once), then the changes."""
        invs = self._inventories()
        todo: queue.Queue = queue.Queue()
        for entry in self.nodes:
            todo.put(entry)

        def worker() -> None:
            while not self.stop.is_set():
                try:
                    index, node, token = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    took = self._report(node, token, invs[index], None)
                    with self.lock:
                        self.out["report_ms"].append(took)
                        self.acked += 1
                except Exception as exc:  # noqa: BLE001
                    self._error("report_inventory", exc)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.args.report_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.out["reports_done_s"] = round(time.monotonic() - self.started, 2)
        n = 0
        every = self.args.interval / self.args.changes if self.args.changes > 0 else None
        while every and not self.stop.wait(every):
            index, node, token = self.nodes[n % len(self.nodes)]
            inv = invs[index]
            memory = inv.get("memory") if isinstance(inv.get("memory"), dict) else {}
            if isinstance(memory.get("total_bytes"), int):
                memory["total_bytes"] += 4096
            try:
                took = self._report(node, token, inv, {"changed": {"memory": 1}})
                with self.lock:
                    self.out["changed_report_ms"].append(took)
            except Exception as exc:  # noqa: BLE001
                self._error("changed report_inventory", exc)
            n += 1

    def run(self, status_path: str) -> None:
        """Heartbeat and report until SIGTERM; note progress in ``status_path`` meanwhile."""
        threads = [
            threading.Thread(target=self.heartbeats, daemon=True),
            threading.Thread(target=self.reports, daemon=True),
        ]
        for t in threads:
            t.start()
        while not self.stop.wait(1.0):
            with self.lock:
                progress = {"reported": len(self.out["report_ms"]), "errors": len(self.out["errors"])}
            tmp = status_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(progress, f)
            os.replace(tmp, status_path)
        for t in threads:
            t.join(30)
        self.transport.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Run one process of simulated agents until SIGTERM."""
    import logging

    parser = argparse.ArgumentParser(prog="fleet_agents", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="transport URL (RabbitMQ, with the run's vhost)")
    parser.add_argument("--nodes", required=True, help="JSON file: [[index, uuid, token], ...]")
    parser.add_argument("--out", required=True, help="where the figures go (JSON), at the end")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between a node's heartbeats")
    parser.add_argument("--report-threads", type=int, default=4, help="inventory reports at once")
    parser.add_argument("--changes", type=int, default=2, help="changed inventories per interval")
    args = parser.parse_args(argv)
    logging.getLogger("oslo_messaging").setLevel(logging.ERROR)
    with open(args.nodes) as f:
        nodes = json.load(f)
    agents = Agents(args, nodes)
    signal.signal(signal.SIGTERM, lambda *_: agents.stop.set())
    try:
        agents.run(args.out + ".status")
    finally:
        with open(args.out, "w") as f:
            json.dump(agents.out, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
