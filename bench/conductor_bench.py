"""Conductor speed: heartbeats/s and report_inventory latency from N agents over the real RabbitMQ.

    python -m bench.conductor_bench [--agents 200] [--procs 2] [--db sqlite|postgresql]
                                    [--paced-rate R] [--heartbeat-threads] [--only noop|kiln]

One run measures two servers on the same broker, one after the other, each started as a process
of its own (so the load generators do not share its GIL), on topics of their own:
  - no-op: two oslo.messaging servers (the agents' topic, and its heartbeat topic with the same
           few threads as the conductor's) whose endpoints only count: the transport's ceiling;
  - kiln:  the real ConductorService as kiln-conductor runs it (its own transport; heartbeats in
           its forked heartbeat process unless --heartbeat-threads; periodic threads) around the
           real ConductorManager, on SQLite in a temporary directory or a throw-away PostgreSQL db.
N simulated agents (threads spread over --procs processes, each with its own RPC client) look up,
report the inventory of a fixture tree made their own (MACs, system UUID, hostname) and send one
heartbeat through ConductorClient, all at once. Then, with heartbeats published by one cheap pump
per generator process (see HeartbeatPump: agents live on other machines, the generators here
share the server's two cores):
  1. saturated: heartbeats as fast as the server drains them, at most --backlog queued; the
     server counts what it processed over --window seconds after --warmup, and the CPU it used;
  2. paced: heartbeats at half the no-op server's saturated rate (the load the target names;
     the same number for both servers, at most --rate) while agents call report_inventory at
     --report-rate per second; p50/p99 of those calls (client side, and server side), split into
     reports equal to the stored inventory (acknowledged without storing) and changed ones (every
     other report changes memory.total_bytes, so it is validated and stored).
Prints the figures, the ratio and PASS/MISS against the targets (heartbeats >= 0.5x the no-op
server's, report_inventory p99 < 50 ms); the no-op server's p99 under the same load is the floor
the broker and the machine set. Asserts nothing. Everything is bounded in count and time.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "sysfs")
TREES = ("hgx-h100", "mi300x", "storage-sas", "vm")
RABBIT = "rabbit://guest:guest@127.0.0.1:5672/"
POSTGRES_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
HEARTBEATS_30K = 1000  # 30,000 nodes at a 30 s heartbeat
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0

# Phases the generators follow (a shared integer the parent sets).
REGISTER, SATURATE, DRAIN, PACED, STOP = 0, 1, 2, 3, 4


# --------------------------------------------------------------------------------------------
# The server process: `python -m bench.conductor_bench serve KIND ...`
# --------------------------------------------------------------------------------------------
class _Counters:
    """Thread-safe counts of what the server processed."""

    def __init__(self) -> None:
        import multiprocessing

        self.lock = threading.Lock()
        # In shared memory: the conductor's forked heartbeat process counts here too.
        self._heartbeats = multiprocessing.get_context("fork").Value("q", 0)
        self.reports = 0
        self.lookups = 0
        self.errors = 0
        self.report_ms: list[float] = []  # server-side wall time of each report_inventory

    def add(self, name: str) -> None:
        """Count one processed message of kind ``name``."""
        if name == "heartbeats":
            with self._heartbeats.get_lock():
                self._heartbeats.value += 1
            return
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def report_took(self, ms: float) -> None:
        """Note the server-side wall time of one report_inventory."""
        with self.lock:
            if len(self.report_ms) < 100_000:
                self.report_ms.append(ms)

    def snapshot(self) -> dict:
        """The counts now, with the server's monotonic clock and the CPU seconds it used so far."""
        import psutil

        me = psutil.Process()
        cpu = 0.0
        for proc in (me, *me.children(recursive=True)):
            try:
                times = proc.cpu_times()
            except psutil.Error:  # a child that just ended
                continue
            cpu += times.user + times.system
        with self.lock:
            return {
                "t": time.monotonic(),
                "cpu": cpu,
                "heartbeats": self._heartbeats.value,
                "reports": self.reports,
                "lookups": self.lookups,
                "errors": self.errors,
                "report_ms": list(self.report_ms),
            }


def _noop_endpoint(counters: _Counters, heartbeat_topic: str):
    import oslo_messaging as messaging

    class NoopConductor:
        """Answers like a conductor and does nothing else."""

        target = messaging.Target(version="1.0")

        def lookup(self, ctxt, macs, system_uuid=None, bootif=None):
            counters.add("lookups")
            node = str(uuid.uuid5(uuid.NAMESPACE_OID, ",".join(macs)))
            config = {"heartbeat_interval": 30, "heartbeat_topic": heartbeat_topic}
            return {"node": {"uuid": node}, "agent_token": "noop", "config": config}

        def report_inventory(self, ctxt, node_uuid, agent_token, inventory, changes=None):
            t0 = time.perf_counter()
            counters.add("reports")
            counters.report_took((time.perf_counter() - t0) * 1000)
            return {"stored": True, "traits": []}

        def heartbeat(self, ctxt, node_uuid, agent_token, status):
            counters.add("heartbeats")

    class NoopHeartbeats:
        """The heartbeat topic's endpoint: heartbeat only, as the conductor's."""

        target = messaging.Target(version="1.0")

        def heartbeat(self, ctxt, node_uuid, agent_token, status):
            counters.add("heartbeats")

    return NoopConductor(), NoopHeartbeats()


def _kiln_endpoint(counters: _Counters, host: str):
    from agent.conductor.manager import ConductorManager

    class CountingConductor(ConductorManager):
        """The real ConductorManager; each message is counted once it was processed."""

        def _counted(self, name: str, method, *args, **kwargs):
            try:
                result = method(*args, **kwargs)
            except Exception:
                counters.add("errors")
                raise
            counters.add(name)
            return result

        def lookup(self, ctxt, *args, **kwargs):
            return self._counted("lookups", super().lookup, ctxt, *args, **kwargs)

        def report_inventory(self, ctxt, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return self._counted("reports", super().report_inventory, ctxt, *args, **kwargs)
            finally:
                counters.report_took((time.perf_counter() - t0) * 1000)

        def heartbeat(self, ctxt, *args, **kwargs):
            return self._counted("heartbeats", super().heartbeat, ctxt, *args, **kwargs)

    return CountingConductor(host)


def serve(kind: str, url: str, topic: str, db_url: str | None, heartbeat_process: bool = True) -> int:
    """Serve ``topic`` (and its heartbeat topic) as ``kind``; answer 'stats' / 'quit' lines on stdin.

    kiln: the real ConductorService (both RPC servers, its periodic threads) around a counting
    ConductorManager. no-op: two oslo.messaging servers of the same shape whose endpoints only count.
    """
    import logging

    from oslo_config import cfg

    from agent.common import config, rpc

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    conf = cfg.CONF
    config.register_opts(conf)
    conf([], project="kiln")
    host = f"bench-{kind}"
    conf.set_override("host", host, group="conductor")
    conf.set_override("enable_discovery", True, group="conductor")
    counters = _Counters()
    if kind == "kiln":
        from agent.conductor.service import ConductorService
        from agent.db import api as db_api
        from agent.db import migration

        db_api.configure(db_url)
        migration.upgrade()
        # As kiln-conductor runs: its own transport, heartbeats in a child process unless asked not to.
        rpc.get_transport(conf, url=url).cleanup()  # registers [DEFAULT]transport_url
        conf.set_override("transport_url", url)
        conf.set_override("heartbeat_process", heartbeat_process, group="conductor")
        service = ConductorService(conf, topic=topic, manager=_kiln_endpoint(counters, host))
        service.start()
        from agent.cmd.conductor import freeze_startup_objects

        freeze_startup_objects()  # as kiln-conductor does after start
        stop = service.stop
        transport = None
    else:
        transport = rpc.get_transport(conf, url=url)
        main, beats = _noop_endpoint(counters, rpc.heartbeat_topic(topic))
        servers = [rpc.get_server(transport, topic, host, [main])]
        servers.append(rpc.get_server(transport, rpc.heartbeat_topic(topic), host, [beats]))
        servers[0].start()
        servers[1].start(override_pool_size=conf.conductor.heartbeat_workers)

        def stop() -> None:
            for server in servers:
                rpc.stop_server(server, 5.0)

    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "stats":
            print(json.dumps(counters.snapshot()), flush=True)
        elif command == "quit":
            break
    stop()  # kiln: as kiln-conductor stops, writing the heartbeats still batched
    if transport is not None:
        transport.cleanup()
    print(json.dumps(counters.snapshot()), flush=True)
    return 0


class ServerProcess:
    """The server subprocess and its stats pipe."""

    def __init__(
        self, kind: str, url: str, topic: str, db_url: str | None, heartbeat_process: bool = True
    ) -> None:
        argv = [sys.executable, "-m", "bench.conductor_bench", "serve", kind, "--url", url, "--topic", topic]
        if not heartbeat_process:
            argv.append("--heartbeat-threads")
        if db_url:
            argv += ["--db-url", db_url]
        self.kind = kind
        self.proc = subprocess.Popen(
            argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self._lock = threading.Lock()
        ready = self._read(60.0)
        if not ready.get("ready"):
            raise RuntimeError(f"{kind} server did not start: {ready}")

    def _read(self, timeout: float) -> dict:
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            raise RuntimeError(
                f"{self.kind} server gave no answer in {timeout:.0f} s (exit {self.proc.poll()})"
            )
        return json.loads(result[0])

    def stats(self) -> dict:
        """The server's counters now."""
        with self._lock:
            self.proc.stdin.write("stats\n")
            self.proc.stdin.flush()
            return self._read(30.0)

    def stop(self) -> dict | None:
        """Stop the server; its final counters, or None when it had to be killed."""
        try:
            with self._lock:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                final = self._read(20.0)
            self.proc.wait(20)
            return final
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(5)
            return None


# --------------------------------------------------------------------------------------------
# The load generators (processes, each with agent threads)
# --------------------------------------------------------------------------------------------
def agent_inventory(base: dict, index: int) -> dict:
    """A fixture inventory made into agent ``index``'s own: MACs, system UUID and hostname."""
    inv = copy.deepcopy(base)
    for n, nic in enumerate(inv.get("nics") or []):
        mac = f"02:6b:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}"
        nic["mac_address"] = mac
        nic["current_mac_address"] = mac
    system = inv.setdefault("system", {})
    system["uuid"] = str(uuid.uuid5(uuid.NAMESPACE_OID, f"kiln-bench-{index}"))
    nics = inv.get("nics") or []
    system["pxe_interface"] = nics[0]["mac_address"] if nics else None
    system["hostname"] = f"bench-{index:05d}"
    return inv


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class HeartbeatPump:
    """Casts agents' heartbeats as cheaply as a load generator can: kombu with oslo's own envelope.

    Agents run on other machines; here the generators share the server's cores, so the bulk of
    the load (heartbeats) skips the RPC client's per-call work: each is published with kombu to
    the control exchange under the heartbeat topic, as the message oslo.messaging's cast of
    ConductorClient.heartbeat builds (method, args, version, a fresh _unique_id, in oslo's envelope,
    made with oslo's own functions). The server decodes and dispatches it like any cast; it counts
    only heartbeats it accepted (the kiln conductor checks each token), so a wrong envelope shows
    as missing heartbeats and server errors.
    """

    def __init__(self, url: str, exchange: str) -> None:
        import kombu

        self._conn = kombu.Connection(url.replace("rabbit://", "amqp://", 1), connect_timeout=10)
        self._producer = kombu.Producer(self._conn.channel())
        self._exchange = kombu.Exchange(exchange, type="topic", durable=False, auto_delete=False)

    def cast(self, topic: str, node_uuid: str, token: str, status: dict) -> None:
        """Publish one heartbeat of ``node_uuid`` to ``topic``."""
        from oslo_messaging._drivers import amqp as rpc_amqp
        from oslo_messaging._drivers import common as rpc_common

        msg = {
            "method": "heartbeat",
            "args": {"node_uuid": node_uuid, "agent_token": token, "status": status},
            "version": "1.0",
        }
        rpc_amqp.pack_context(msg, {})
        rpc_amqp._add_unique_id(msg)
        self._producer.publish(
            rpc_common.serialize_msg(msg), exchange=self._exchange, routing_key=topic, declare=[]
        )

    def close(self) -> None:
        """Close the connection."""
        self._conn.release()


def generator(
    gen_index: int, agents: list[int], args: dict, ctl: dict, results: mp.Queue
) -> None:  # pragma: no cover - runs in a child process
    """Run ``agents`` against the server; put what they measured on ``results``.

    Each agent is a thread with its own RPC client: it looks up, reports its inventory and sends
    one heartbeat through ConductorClient, then makes the paced phase's report_inventory calls. The
    process's heartbeats after registration come from one HeartbeatPump thread.
    """
    import logging

    from oslo_config import cfg

    from agent.common import config, rpc
    from agent.inventory.collect import collect
    from agent.node.conductor_client import ConductorClient

    logging.getLogger("oslo_messaging").setLevel(logging.ERROR)  # many agents, one pool: noisy
    conf = cfg.CONF
    config.register_opts(conf)
    conf([], project="kiln")
    bases = [collect(os.path.join(FIXTURES, t), use_nvml=False) for t in TREES]
    transport = rpc.get_transport(conf, url=args["url"])
    phase, sent, allowed = ctl["phase"], ctl["sent"], ctl["allowed"]
    lock = threading.Lock()
    out = {
        "registration_ms": [],
        "paced_report_ms": [],
        "paced_same_ms": [],
        "paced_changed_ms": [],
        "paced_heartbeats": 0,
        "errors": [],
        "saturated_sent": 0,
    }
    registered: list[tuple[str, str, str]] = []  # (node, token, heartbeat topic)
    status = {"version": "bench", "uptime_s": 0.0}

    def note_error(what: str, exc: Exception) -> None:
        with lock:
            if len(out["errors"]) < 20:
                out["errors"].append(f"{what}: {type(exc).__name__}: {exc}"[:300])

    def run_agent(index: int) -> None:
        client = ConductorClient(transport, topic=args["topic"], timeout=args["call_timeout"])
        inv = agent_inventory(bases[index % len(bases)], index)
        macs = sorted(n["mac_address"] for n in inv.get("nics") or [])
        try:
            answer = client.lookup({}, macs, inv["system"]["uuid"], inv["system"]["pxe_interface"])
            node, token = answer["node"]["uuid"], answer.get("agent_token") or ""
            hb_topic = answer["config"].get("heartbeat_topic") or args["topic"]
            started = time.perf_counter()
            client.report_inventory({}, node, token, inv, None)
            with lock:
                out["registration_ms"].append((time.perf_counter() - started) * 1000)
            client.heartbeat({}, node, token, status, topic=hb_topic)  # as kiln-agent sends it
        except Exception as exc:  # noqa: BLE001 - counted and shown, the run goes on
            note_error("register", exc)
            return
        with lock:
            registered.append((node, token, hb_topic))
        reached[PACED].wait()  # one thread watches the phase: idle agents cost the server no CPU
        rng = random.Random(index)
        report_every = args["agents"] / args["report_rate"] if args["report_rate"] > 0 else float("inf")
        # Each agent reports every report_every seconds from a random start: report_rate/s in all.
        next_report = time.monotonic() + rng.uniform(0, report_every)
        lat, same, changed = [], [], []
        reports = 0
        memory = inv.get("memory") if isinstance(inv.get("memory"), dict) else {}
        while not reached[STOP].is_set():
            now = time.monotonic()
            if now < next_report:
                reached[STOP].wait(next_report - now)
                continue
            change = (index + reports) % 2 == 1  # half the reports: a changed inventory, stored
            if change and isinstance(memory.get("total_bytes"), int):
                memory["total_bytes"] += 4096
            try:
                started = time.perf_counter()
                client.report_inventory({}, node, token, inv, {"changed": {"memory": 1}} if change else None)
                took = (time.perf_counter() - started) * 1000
                lat.append(took)
                (changed if change else same).append(took)
            except Exception as exc:  # noqa: BLE001
                note_error("report_inventory", exc)
            reports += 1
            next_report += report_every
        with lock:
            out["paced_report_ms"].extend(lat)
            out["paced_same_ms"].extend(same)
            out["paced_changed_ms"].extend(changed)

    def pump() -> None:
        while phase.value == REGISTER:
            time.sleep(0.01)
        with lock:
            mine = list(registered)
        if not mine:
            return
        beats = HeartbeatPump(args["url"], rpc.CONTROL_EXCHANGE)
        n = 0
        try:
            while phase.value == SATURATE:
                with sent.get_lock():
                    ok = sent.value < allowed.value
                    if ok:
                        sent.value += 1
                if not ok:
                    time.sleep(0.001)
                    continue
                node, token, topic = mine[n % len(mine)]
                beats.cast(topic, node, token, status)
                n += 1
            out["saturated_sent"] = n
            while phase.value == DRAIN:
                time.sleep(0.01)
            every = args["procs"] / ctl["rate"].value  # this process's share of the paced rate
            next_beat, n = time.monotonic(), 0
            while phase.value == PACED:
                now = time.monotonic()
                if now < next_beat:
                    time.sleep(next_beat - now)
                    continue
                node, token, topic = mine[n % len(mine)]
                beats.cast(topic, node, token, status)
                n += 1
                next_beat += every
            out["paced_heartbeats"] = n
        except Exception as exc:  # noqa: BLE001 - shown; the server's counts tell the rest
            note_error("heartbeat pump", exc)
        finally:
            beats.close()

    reached = {p: threading.Event() for p in (REGISTER, SATURATE, DRAIN, PACED, STOP)}

    def watch_phase() -> None:
        while not reached[STOP].is_set():
            for p in reached:
                if p <= phase.value:
                    reached[p].set()
            time.sleep(0.005)

    threads = [threading.Thread(target=run_agent, args=(i,), daemon=True) for i in agents]
    threads.append(threading.Thread(target=pump, daemon=True))
    threading.Thread(target=watch_phase, daemon=True).start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(args["paced"] + args["warmup"] + args["window"] + args["call_timeout"] * 3 + 120)
    transport.cleanup()
    results.put({"gen": gen_index, **out})


# --------------------------------------------------------------------------------------------
# One measurement of one server
# --------------------------------------------------------------------------------------------
def measure(kind: str, opts: argparse.Namespace, db_url: str | None, paced: float | None = None) -> dict:
    """Start the ``kind`` server, run the agents through every phase, return the figures.

    The paced phase offers ``paced`` heartbeats/s (default: TARGET_RATIO x this server's own
    saturated rate), at most --rate.
    """
    topic = f"kiln.bench.{kind}.{uuid.uuid4().hex[:8]}"
    server = ServerProcess(kind, opts.transport_url, topic, db_url, not opts.heartbeat_threads)
    ctx = mp.get_context("spawn")
    ctl = {
        "phase": ctx.RawValue("i", REGISTER),
        "sent": ctx.Value("q", 0),
        "allowed": ctx.RawValue("q", 0),
        "rate": ctx.RawValue("d", float(opts.rate)),
    }
    results = ctx.Queue()
    args = {
        "url": opts.transport_url,
        "topic": topic,
        "agents": opts.agents,
        "rate": float(opts.rate),
        "report_rate": float(opts.report_rate),
        "paced": opts.paced,
        "warmup": opts.warmup,
        "window": opts.window,
        "call_timeout": opts.call_timeout,
        "procs": opts.procs,
    }
    split = [list(range(opts.agents))[i :: opts.procs] for i in range(opts.procs)]
    procs = [
        ctx.Process(target=generator, args=(i, part, args, ctl, results)) for i, part in enumerate(split)
    ]
    figures: dict = {"kind": kind, "topic": topic}
    try:
        started = time.monotonic()
        for p in procs:
            p.start()
        deadline = started + 60 + opts.agents * 0.5
        while time.monotonic() < deadline:
            st = server.stats()
            # Every agent reported (or failed) and its first heartbeat (sent by the RPC client) arrived.
            if st["reports"] + st["errors"] >= opts.agents and st["heartbeats"] >= st["reports"]:
                break
            time.sleep(0.1)
        figures["registration_s"] = time.monotonic() - started
        figures["registration_heartbeats"] = st["heartbeats"]
        base = server.stats()
        ctl["allowed"].value = base["heartbeats"] + opts.backlog
        ctl["phase"].value = SATURATE
        window_start = time.monotonic() + opts.warmup
        first = last = None
        while True:
            st = server.stats()
            ctl["allowed"].value = st["heartbeats"] + opts.backlog
            now = time.monotonic()
            if first is None and now >= window_start:
                first = st
            if first is not None and now >= window_start + opts.window:
                last = st
                break
            time.sleep(0.02)
        beats = last["heartbeats"] - first["heartbeats"]
        figures["saturated_hb_s"] = beats / (last["t"] - first["t"])
        figures["saturated_cpu_us"] = (last["cpu"] - first["cpu"]) / beats * 1e6 if beats else float("nan")
        figures["saturated_cpu_share"] = (last["cpu"] - first["cpu"]) / (last["t"] - first["t"])
        # Drain what is queued before pacing, bounded.
        ctl["phase"].value = DRAIN  # generators leave the saturated loop and wait
        drain_until = time.monotonic() + 30
        while time.monotonic() < drain_until:
            st = server.stats()
            if st["heartbeats"] - base["heartbeats"] >= ctl["sent"].value:
                break
            time.sleep(0.05)
        # The load the target names: half the no-op server's rate (the same number for both servers).
        wanted = paced if paced else TARGET_RATIO * figures["saturated_hb_s"]
        ctl["rate"].value = figures["paced_rate"] = min(float(opts.rate), wanted)
        ctl["phase"].value = PACED
        p0 = server.stats()
        time.sleep(opts.paced)
        p1 = server.stats()
        ctl["phase"].value = STOP
        figures["paced_hb_s"] = (p1["heartbeats"] - p0["heartbeats"]) / (p1["t"] - p0["t"])
        figures["paced_cpu_share"] = (p1["cpu"] - p0["cpu"]) / (p1["t"] - p0["t"])
        inside = p1["report_ms"][len(p0["report_ms"]) :]
        figures["paced_server_p50"] = _percentile(inside, 50)
        figures["paced_server_p99"] = _percentile(inside, 99)
        gathered = []
        for _ in procs:
            with contextlib.suppress(Exception):
                gathered.append(results.get(timeout=opts.call_timeout * 3 + 30))
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        reg = [v for g in gathered for v in g["registration_ms"]]
        paced = [v for g in gathered for v in g["paced_report_ms"]]
        same = [v for g in gathered for v in g["paced_same_ms"]]
        changed = [v for g in gathered for v in g["paced_changed_ms"]]
        figures.update(
            paced_same_p50=_percentile(same, 50),
            paced_same_p99=_percentile(same, 99),
            paced_changed_p50=_percentile(changed, 50),
            paced_changed_p99=_percentile(changed, 99),
            paced_changed=len(changed),
            registered=len(reg),
            registration_p50=_percentile(reg, 50),
            registration_p99=_percentile(reg, 99),
            paced_reports=len(paced),
            paced_p50=_percentile(paced, 50),
            paced_p99=_percentile(paced, 99),
            errors=[e for g in gathered for e in g["errors"]][:10],
        )
    finally:
        ctl["phase"].value = STOP
        for p in procs:
            if p.is_alive():
                p.join(5)
            if p.is_alive():
                p.kill()
        final = server.stop()
        figures["server_errors"] = final["errors"] if final else None
        _delete_queues(opts.transport_url, topic, server_name=f"bench-{kind}")
    return figures


def _delete_queues(url: str, topic: str, server_name: str) -> None:
    """Remove the run's topic queues from the broker (they are not auto-deleted)."""
    try:
        import kombu

        with kombu.Connection(url.replace("rabbit://", "amqp://"), connect_timeout=5) as conn:
            channel = conn.channel()
            for name in (topic, f"{topic}.{server_name}"):
                with contextlib.suppress(Exception):
                    channel.queue_delete(name)
    except Exception as exc:  # noqa: BLE001 - leftover queues are harmless, say so
        print(f"  (could not delete the bench queues of {topic}: {exc})", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# Databases and the report
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def database(kind: str):
    """A database URL for the kiln conductor that is removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="kiln-conductor-bench-") as tmp:
            yield f"sqlite:///{tmp}/kiln.sqlite"
        return
    import sqlalchemy as sa

    name = f"kiln_bench_{os.getpid()}"
    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _ms(v: float) -> str:
    return "-" if v != v else f"{v:.1f} ms"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(opts: argparse.Namespace, results: dict[str, dict]) -> None:
    """Print the figures of both servers, the ratio and PASS/MISS against the targets."""
    noop, kiln = results.get("noop"), results.get("kiln")
    print()
    print(f"{'':50}{'no-op server':>16}{'kiln conductor':>16}")

    def line(label: str, key: str, fmt) -> None:
        cells = [fmt(r[key]) if r and key in r else "-" for r in (noop, kiln)]
        print(f"{label:50}{cells[0]:>16}{cells[1]:>16}")

    line("heartbeats/s, saturated (server-side count)", "saturated_hb_s", lambda v: f"{v:,.0f}")
    line("  server CPU per heartbeat, saturated", "saturated_cpu_us", lambda v: f"{v:,.0f} us")
    line("  server CPU use, saturated (1.0 = one core)", "saturated_cpu_share", lambda v: f"{v:.2f}")
    line("heartbeats/s offered, paced", "paced_rate", lambda v: f"{v:,.0f}")
    line("heartbeats/s processed, paced", "paced_hb_s", lambda v: f"{v:,.0f}")
    line("  server CPU use, paced (1.0 = one core)", "paced_cpu_share", lambda v: f"{v:.2f}")
    line(f"report_inventory p50, {opts.agents} agents at once", "registration_p50", _ms)
    line(f"report_inventory p99, {opts.agents} agents at once", "registration_p99", _ms)
    line(f"report_inventory p50, paced ({opts.report_rate:g}/s)", "paced_p50", _ms)
    line(f"report_inventory p99, paced ({opts.report_rate:g}/s)", "paced_p99", _ms)
    line("  p50 / p99 of reports equal to the stored one", "paced_same_p50", _ms)
    line("", "paced_same_p99", _ms)
    line("  p50 / p99 of changed reports (stored)", "paced_changed_p50", _ms)
    line("", "paced_changed_p99", _ms)
    line("reports measured while paced", "paced_reports", str)
    line("  server-side time of report_inventory, p50", "paced_server_p50", _ms)
    line("  server-side time of report_inventory, p99", "paced_server_p99", _ms)
    print()
    if kiln and kiln.get("saturated_hb_s"):
        print(
            f"kiln heartbeats/s: {kiln['saturated_hb_s']:,.0f} (= {kiln['saturated_hb_s'] * 30:,.0f} nodes "
            f"at a 30 s heartbeat; 30,000 nodes need {HEARTBEATS_30K:,}/s)"
        )
    if noop and noop.get("saturated_hb_s"):
        print(f"no-op heartbeats/s: {noop['saturated_hb_s']:,.0f}")
    if noop and kiln and noop.get("saturated_hb_s"):
        ratio = kiln["saturated_hb_s"] / noop["saturated_hb_s"]
        print(
            f"ratio kiln / no-op: {ratio:.2f}x   target >= {TARGET_RATIO}x: {_verdict(ratio >= TARGET_RATIO)}"
        )
    if kiln:
        p50, p99 = kiln.get("paced_p50", float("nan")), kiln.get("paced_p99", float("nan"))
        print(
            f"kiln report_inventory under load: p50 {_ms(p50)}, p99 {_ms(p99)}   "
            f"target p99 < {TARGET_P99_MS:.0f} ms: {_verdict(p99 < TARGET_P99_MS)}"
        )
        changed = kiln.get("paced_changed_p99", float("nan"))
        print(
            f"  changed (stored) reports only: p99 {_ms(changed)}: {_verdict(changed < TARGET_P99_MS)}; "
            f"reports equal to the stored one: p99 {_ms(kiln.get('paced_same_p99', float('nan')))}"
        )
    if noop:
        floor = noop.get("paced_p99", float("nan"))
        note = (
            " (the broker and this machine's load alone exceed the target)" if floor >= TARGET_P99_MS else ""
        )
        print(f"no-op report_inventory p99 under the same load: {_ms(floor)}{note}")
    for r in (noop, kiln):
        if r and (r.get("errors") or r.get("server_errors")):
            print(
                f"{r['kind']}: {r.get('server_errors')} server-side errors; client errors: {r['errors'][:3]}"
            )


def main(argv: list[str] | None = None) -> int:
    """Run the conductor benchmark (or, with `serve`, one server process)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        p = argparse.ArgumentParser(prog="conductor_bench serve")
        p.add_argument("serve")
        p.add_argument("kind", choices=("noop", "kiln"))
        p.add_argument("--url", required=True)
        p.add_argument("--topic", required=True)
        p.add_argument("--db-url")
        p.add_argument("--heartbeat-threads", action="store_true")
        a = p.parse_args(argv)
        return serve(a.kind, a.url, a.topic, a.db_url, not a.heartbeat_threads)
    parser = argparse.ArgumentParser(prog="conductor_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200, help="simulated agents (threads)")
    parser.add_argument(
        "--procs", type=int, default=2, help="load-generator processes the agents are spread over"
    )
    parser.add_argument("--transport-url", default=RABBIT, help="broker (default: the local RabbitMQ)")
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql"), default="sqlite", help="the conductor's database"
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of saturation before counting")
    parser.add_argument(
        "--window", type=float, default=8.0, help="seconds the saturated rate is counted over"
    )
    parser.add_argument("--backlog", type=int, default=200, help="most heartbeats queued while saturating")
    parser.add_argument(
        "--rate", type=int, default=HEARTBEATS_30K, help="most heartbeats/s offered while paced (all agents)"
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        help="heartbeats/s offered while paced (default: half the no-op server's saturated rate, "
        "the load the target names; with --only kiln, half kiln's own)",
    )
    parser.add_argument("--report-rate", type=float, default=10.0, help="paced report_inventory calls/s")
    parser.add_argument(
        "--paced", type=float, default=20.0, help="seconds of the paced phase (20 s: ~200 reports at 10/s)"
    )
    parser.add_argument("--call-timeout", type=int, default=60, help="seconds an RPC call waits")
    parser.add_argument("--only", choices=("noop", "kiln"), help="measure one server only")
    parser.add_argument(
        "--heartbeat-threads",
        action="store_true",
        help="kiln: serve heartbeats with threads of the conductor ([conductor]heartbeat_process = false)",
    )
    opts = parser.parse_args(argv)
    if opts.agents < 1 or opts.procs < 1 or opts.rate < 1 or opts.window <= 0:
        parser.error("--agents, --procs, --rate and --window must be positive")
    opts.procs = min(opts.procs, opts.agents)
    print(
        f"conductor bench: {opts.agents} agents in {opts.procs} processes, broker "
        f"{opts.transport_url.split('@')[-1]}, kiln database {opts.db}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    results: dict[str, dict] = {}
    kinds = [opts.only] if opts.only else ["noop", "kiln"]
    with database(opts.db) as db_url:
        for kind in kinds:
            print(f"measuring the {kind} server ...", flush=True)
            noop = results.get("noop") or {}
            paced = opts.paced_rate or noop.get("paced_rate")  # kiln gets the no-op server's paced load
            try:
                results[kind] = measure(kind, opts, db_url if kind == "kiln" else None, paced)
            except Exception as exc:  # noqa: BLE001 - the other server's figures are still worth printing
                print(f"  {kind}: failed: {type(exc).__name__}: {exc}")
    report(opts, results)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
