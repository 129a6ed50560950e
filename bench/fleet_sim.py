"""Fleet simulator: one kiln-conductor with N heartbeating fake-hardware nodes, against Ironic 39.

    python -m bench.fleet_sim [--nodes 10000] [--agent-procs 4] [--interval 30] [--hold 90]
                              [--verbs 100] [--repeat 3] [--no-ironic]

Kiln: a throw-away PostgreSQL database and a RabbitMQ vhost of the run's own; N fake-hardware
nodes enrolled in bulk through Kiln's database layer (one INSERT, each with an agent token as
lookup would issue it), plus one node for the provision verbs; kiln-conductor and kiln-api
started as processes, as the functional tests start them, with [conductor]periodic_timing_log on.
--agent-procs processes of simulated agents (bench.fleet_agents) heartbeat for all N nodes every
--interval seconds with ConductorClient.heartbeat and report each node's fixture inventory once,
then a few changed ones per interval. --silent-pct of the nodes never heartbeat: half in enroll
with a last heartbeat an hour old (the heartbeat-timeout pass flags them), half in "wait call-back"
since an hour ago (the callback-timeout pass fails them). Once every inventory is in, it measures,
while the fleet heartbeats:
  - GET /v1/nodes/detail, all pages ("next" links), median of --repeat (target <= 1.5 s at 10,000),
    and again once the agents are stopped (Ironic is listed with no fleet load either);
  - PUT /v1/nodes/<verb node>/states/provision until the 202, --verbs times (manage, provide,
    manage, ...; the node settles between two): p50/p99 (target p99 <= 100 ms);
  - each periodic pass's duration against its interval, from the conductor's log, over --hold s;
  - kiln-conductor's RSS (psutil), with its heartbeat process.
Ironic 39 (bench.ironic_baseline) is then enrolled with the same N nodes and listed the same way.
Prints each figure, its target and its ratio to Ironic; asserts nothing; removes what it made.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from bench.fleet_agents import percentile
from tests.functional import procs

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest", "Content-Type": "application/json"}
LIST_TARGET_S = 1.5
VERB_TARGET_MS = 100.0
VERB_NODE = "fleet-sim-verb"
NEXT_VERB = {"enroll": "manage", "manageable": "provide", "available": "manage"}
_TIMING = re.compile(r"Periodic (\S+) took ([0-9.]+) s \(every (\d+) s\)")


def request(method: str, url: str, body: dict | None = None, timeout: float = 120) -> tuple[int, dict]:
    """One HTTP request with the API version header; (status, JSON body or {})."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=HEADERS)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else {})


def list_all(base: str) -> tuple[float, int, int]:
    """GET /v1/nodes/detail following "next" links: (seconds, nodes, pages)."""
    started = time.perf_counter()
    url, seen, pages = f"{base}/v1/nodes/detail", 0, 0
    while url:
        _, body = request("GET", url)
        seen += len(body["nodes"])
        pages += 1
        url = body.get("next")
    return time.perf_counter() - started, seen, pages


def time_listing(base: str, repeat: int) -> dict:
    """The median of ``repeat`` full listings, with the node and page counts."""
    runs = [list_all(base) for _ in range(repeat)]
    return {
        "median_s": statistics.median(r[0] for r in runs),
        "all_s": [round(r[0], 3) for r in runs],
        "nodes": runs[-1][1],
        "pages": runs[-1][2],
    }


def enroll_kiln(conf: Path, count: int, silent_pct: float) -> list[list]:
    """Insert ``count`` heartbeating nodes (and the silent ones, and the verb node); [[i, uuid, token]]."""
    from oslo_config import cfg

    from agent.common import config
    from agent.common.tokens import hash_token
    from agent.db import api as db_api
    from agent.db import engine as db_engine
    from agent.db.models import Node

    config.register_opts(cfg.CONF)
    cfg.CONF(["--config-file", str(conf)], project="kiln")
    db_api.configure(cfg.CONF.database.connection)
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    silent = int(count * silent_pct / 100)
    rows, beating = [], []
    for i in range(count + 1):
        token = secrets.token_urlsafe(24)
        row = {
            "uuid": str(uuid.uuid4()),
            "name": f"sim-{i:06d}" if i < count else VERB_NODE,
            "driver": "fake-hardware",
            "provision_state": "enroll",
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
            "agent_token_hash": hash_token(token),
            "last_heartbeat_at": None,
            "provision_updated_at": None,
        }
        if i < silent:  # never beats: flagged by the heartbeat-timeout pass / callback-timeout pass
            row["last_heartbeat_at"] = old
            if i % 2:
                row.update(provision_state="wait call-back", target_provision_state="active")
                row["provision_updated_at"] = old
        elif i < count:
            beating.append([i, row["uuid"], token])
        rows.append(row)
    with db_engine.session(write=True) as sess:
        for start in range(0, len(rows), 2000):
            sess.execute(Node.__table__.insert(), rows[start : start + 2000])
    db_api.dispose()
    return beating


def provision_verbs(base: str, count: int) -> dict:
    """``count`` provision verbs on the verb node: ms from PUT to the 202 of each, and failures."""
    took, failures, by_verb = [], [], {}
    url = f"{base}/v1/nodes/{VERB_NODE}"
    for _ in range(count):
        state = settle(url)
        verb = NEXT_VERB.get(state)
        if verb is None:
            failures.append(f"verb node settled in {state!r}")
            break
        started = time.perf_counter()
        status, _ = request("PUT", f"{url}/states/provision", {"target": verb})
        took.append((time.perf_counter() - started) * 1000)
        by_verb.setdefault(verb, []).append(took[-1])
        if status != 202:
            failures.append(f"{verb}: HTTP {status}")
    return {"ms": took, "failures": failures, "by_verb": by_verb}


def settle(url: str, timeout: float = 60) -> str:
    """Wait until the node has no target provision state; its provision state."""
    deadline = time.monotonic() + timeout
    while True:
        _, node = request("GET", url)
        if not node.get("target_provision_state") or time.monotonic() > deadline:
            return node["provision_state"]
        time.sleep(0.05)


def periodic_timings(log: Path) -> dict[str, dict]:
    """Per periodic pass in kiln-conductor's log: runs, max and median seconds, interval."""
    found: dict[str, dict] = {}
    for name, took, every in _TIMING.findall(procs.read(log)):
        entry = found.setdefault(name, {"runs": [], "every": int(every)})
        entry["runs"].append(float(took))
    return found


def rss_mib(pid: int) -> tuple[float, float, float]:
    """RSS (MiB) of process ``pid``, of its children together, and their memory not shared with it (USS)."""
    import psutil

    me = psutil.Process(pid)
    children = own = 0
    for child in me.children(recursive=True):
        try:
            children += child.memory_info().rss
            own += child.memory_full_info().uss
        except psutil.Error:
            continue
    return me.memory_info().rss / 2**20, children / 2**20, own / 2**20


def heartbeat_freshness(interval: float) -> dict:
    """How many heartbeating nodes' last heartbeat in the database is older than 2 intervals."""
    from oslo_config import cfg
    from sqlalchemy import func, select

    from agent.db import api as db_api
    from agent.db import engine as db_engine
    from agent.db.models import Node

    db_api.configure(cfg.CONF.database.connection)
    limit = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=2 * interval)
    recent = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=30)
    with db_engine.session() as sess:
        stale = sess.scalar(
            select(func.count()).where(Node.last_heartbeat_at < limit, Node.last_heartbeat_at > recent)
        )
        never = sess.scalar(
            select(func.count()).where(Node.last_heartbeat_at.is_(None), Node.name != VERB_NODE)
        )
        fresh = sess.scalar(select(func.count()).where(Node.last_heartbeat_at >= limit))
    db_api.dispose()
    return {"fresh": fresh, "stale": stale, "never": never}


def start_agents(tmp: Path, nodes: list[list], args: argparse.Namespace, url: str) -> list:
    """Start --agent-procs bench.fleet_agents processes over ``nodes``; [(proc, out path)]."""
    started = []
    share = max(1, -(-len(nodes) // args.agent_procs))
    for n in range(args.agent_procs):
        mine = nodes[n * share : (n + 1) * share]
        if not mine:
            break
        nodes_file, out = tmp / f"agents-{n}.json", tmp / f"agents-{n}.out.json"
        nodes_file.write_text(json.dumps(mine))
        cmd = [sys.executable, "-m", "bench.fleet_agents", "--url", url]
        cmd += ["--nodes", str(nodes_file), "--out", str(out), "--interval", str(args.interval)]
        cmd += ["--report-threads", str(args.report_threads), "--changes", str(args.changes)]
        with open(tmp / f"agents-{n}.log", "ab") as log:
            proc = subprocess.Popen(
                cmd, cwd=procs.REPO, env=procs._env(), stdout=log, stderr=subprocess.STDOUT
            )
        started.append((proc, out))
    return started


def wait_reported(agents: list, total: int, timeout: float) -> float:
    """Wait until every node's first inventory report is answered; the seconds it took."""
    started = time.monotonic()

    def reported() -> int:
        count = 0
        for _, out in agents:
            try:
                count += json.loads(Path(str(out) + ".status").read_text())["reported"]
            except (OSError, ValueError, KeyError):
                pass
        return count

    while reported() < total:
        for proc, _ in agents:
            if proc.poll() is not None:
                raise RuntimeError(f"simulated agents {proc.args[-1]} exited with {proc.returncode}")
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"only {reported()} of {total} inventories reported after {timeout:.0f} s")
        time.sleep(1)
    return time.monotonic() - started


def stop_agents(agents: list) -> dict:
    """SIGTERM the agent processes; their figures merged."""
    for proc, _ in agents:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    merged: dict = {"heartbeats": 0, "late_ms": [], "report_ms": [], "changed_report_ms": [], "errors": []}
    for proc, out in agents:
        procs.stop(proc, 60)
        try:
            data = json.loads(Path(out).read_text())
        except (OSError, ValueError) as exc:
            merged["errors"].append(f"{out}: {exc}")
            continue
        merged["heartbeats"] += data["heartbeats"]
        for key in ("late_ms", "report_ms", "changed_report_ms", "errors"):
            merged[key] += data[key]
    return merged


def run_kiln(args: argparse.Namespace, tmp: Path) -> dict:
    """Everything on Kiln's side (the vhost, the database and the processes exist only meanwhile)."""
    vhost = f"kiln-sim-{uuid.uuid4().hex[:12]}"
    url = f"rabbit://guest:guest@127.0.0.1:5672/{vhost}"
    port = procs.free_port()
    base = f"http://127.0.0.1:{port}"
    result: dict = {}
    procs.add_vhost(vhost)
    try:
        with procs.throwaway_postgres() as db_url:
            conf = procs.write_conf(
                tmp / "kiln.conf",
                {
                    "DEFAULT": {"transport_url": url, "state_path": tmp},
                    "database": {"connection": db_url},
                    "conductor": {"host": "fleet-sim", "periodic_timing_log": "true"},
                    "api": {"host_ip": "127.0.0.1", "port": port},
                },
            )
            procs.dbsync(conf)
            started = time.perf_counter()
            nodes = enroll_kiln(conf, args.nodes, args.silent_pct)
            result["enroll_s"] = time.perf_counter() - started
            print(f"kiln: enrolled {args.nodes + 1} nodes in {result['enroll_s']:.1f} s (DB layer, bulk)")
            conductor = procs.start("agent.cmd.conductor", conf, tmp / "conductor.log")
            api, agents = None, []
            try:
                procs.wait_for_log(tmp / "conductor.log", "kiln-conductor fleet-sim serving RPC", conductor)
                api = procs.start("agent.cmd.api", conf, tmp / "api.log")
                procs.wait_for(lambda: procs.http_answers(base + "/"), 60, "kiln-api", (api,))
                agents = start_agents(tmp, nodes, args, url)
                result["reports_s"] = wait_reported(agents, len(nodes), args.report_timeout)
                print(
                    f"kiln: {len(nodes)} agents beating; every inventory in after {result['reports_s']:.1f} s"
                )
                hold_until = time.monotonic() + args.hold
                result["list"] = time_listing(base, args.repeat)
                result["verbs"] = provision_verbs(base, args.verbs)
                time.sleep(max(0.0, hold_until - time.monotonic()))
                result["rss"] = rss_mib(conductor.pid)
                result["freshness"] = heartbeat_freshness(args.interval)
                result["agents"] = stop_agents(agents)
                agents = []
                time.sleep(5)  # the heartbeat backlog drains
                result["list_quiet"] = time_listing(base, args.repeat)  # as Ironic's: no fleet load
            finally:
                if agents:
                    result["agents"] = stop_agents(agents)
                for proc in (api, conductor):
                    if proc is not None:
                        procs.stop(proc, 30)
            result["periodics"] = periodic_timings(tmp / "conductor.log")
    finally:
        procs.delete_vhost(vhost)
    return result


def run_ironic(args: argparse.Namespace, tmp: Path) -> dict:
    """Ironic 39's listing of the same number of nodes: {"list": ...} or {"error": why not}."""
    from bench import ironic_baseline

    workdir = tmp / "ironic"
    workdir.mkdir()
    port = procs.free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        cmd = ironic_baseline.prepare(workdir, port, args.nodes + 1)
    except (ironic_baseline.IronicUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    with open(workdir / "ironic.out", "ab") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    try:
        procs.wait_for(lambda: procs.http_answers(base + "/"), 120, "Ironic's API", (proc,))
        return {"list": time_listing(base, args.repeat)}
    except AssertionError as exc:
        return {"error": f"{exc}\n{procs.read(workdir / 'ironic.log')[-1500:]}"}
    finally:
        procs.stop(proc, 30)


def _ratio(kiln: float, ironic: float | None) -> str:
    return f"Kiln takes {kiln / ironic:.2f}x Ironic's time" if ironic else "no Ironic figure"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(args: argparse.Namespace, kiln: dict, ironic: dict) -> None:
    """Print each figure with its target and its ratio to Ironic."""
    n = args.nodes
    load = os.getloadavg()[0]
    print(f"\n== fleet_sim: {n} nodes heartbeating every {args.interval:.0f} s, load average {load:.1f} ==")
    ir_list = ironic.get("list", {}).get("median_s")
    if "error" in ironic:
        print(f"Ironic 39 could not be measured: {ironic['error']}")
    target = LIST_TARGET_S * max(n, 1000) / 10000  # 1.5 s at 10,000, scaled for a quick run
    for key, when in (("list_quiet", "agents stopped, as Ironic"), ("list", "while the fleet heartbeats")):
        kl = kiln[key]
        print(
            f"GET /v1/nodes/detail, {kl['nodes']} nodes in {kl['pages']} pages, {when}: "
            f"{kl['median_s']:.2f} s (runs {kl['all_s']}); target <= {target:.2f} s "
            f"{_verdict(kl['median_s'] <= target)}; Ironic 39: {f'{ir_list:.2f} s' if ir_list else 'n/a'} "
            f"({_ratio(kl['median_s'], ir_list)})"
        )
    verbs = kiln["verbs"]["ms"]
    p99 = percentile(verbs, 99)
    print(
        f"provision verb, PUT to 202, {len(verbs)} verbs: p50 {percentile(verbs, 50):.0f} ms, "
        f"p99 {p99:.0f} ms; target p99 <= {VERB_TARGET_MS:.0f} ms {_verdict(p99 <= VERB_TARGET_MS)}"
        + (f"; failures: {kiln['verbs']['failures']}" if kiln["verbs"]["failures"] else "")
    )
    for verb, ms in sorted(kiln["verbs"]["by_verb"].items()):
        print(f"  {verb:8s} {len(ms):3d}: p50 {percentile(ms, 50):.0f} ms, p99 {percentile(ms, 99):.0f} ms")
    main_mib, children_mib, own_mib = kiln["rss"]
    print(
        f"kiln-conductor RSS: {main_mib:.0f} MiB, + {children_mib:.0f} MiB in its heartbeat process "
        f"({own_mib:.0f} MiB of it its own, not shared with the parent)"
    )
    print("periodic passes (max / median against the interval):")
    for name, entry in sorted(kiln["periodics"].items()):
        runs = entry["runs"]
        print(
            f"  {name:20s} {len(runs):3d} runs: max {max(runs):.3f} s, "
            f"median {statistics.median(runs):.3f} s, "
            f"every {entry['every']} s {_verdict(max(runs) <= entry['every'])}"
        )
    print("  power-state sync     none: no such pass in kiln-conductor (sync_power_state_interval unused)")
    ag = kiln["agents"]
    fr = kiln["freshness"]
    print(
        f"agents: {ag['heartbeats']} heartbeats cast (late p99 {percentile(ag['late_ms'], 99):.0f} ms); "
        f"inventories: first {len(ag['report_ms'])} in {kiln['reports_s']:.0f} s, p50 "
        f"{percentile(ag['report_ms'], 50):.0f} ms p99 {percentile(ag['report_ms'], 99):.0f} ms; "
        f"{len(ag['changed_report_ms'])} changed, p99 {percentile(ag['changed_report_ms'], 99):.0f} ms"
    )
    print(
        f"heartbeats stored: {fr['fresh']} nodes within 2 intervals, {fr['stale']} older, {fr['never']} never"
        + (f"; agent errors: {ag['errors'][:3]}" if ag["errors"] else "")
    )


def main(argv: list[str] | None = None) -> int:
    """Run the fleet simulation and print the figures."""
    parser = argparse.ArgumentParser(prog="fleet_sim", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10000, help="heartbeating nodes")
    parser.add_argument("--agent-procs", type=int, default=4, help="processes of simulated agents")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between a node's heartbeats")
    parser.add_argument(
        "--report-threads", type=int, default=4, help="inventory reports at once, per process"
    )
    parser.add_argument(
        "--changes", type=int, default=2, help="changed inventories per interval, per process"
    )
    parser.add_argument("--silent-pct", type=float, default=1.0, help="%% of nodes that never heartbeat")
    parser.add_argument("--hold", type=float, default=90.0, help="seconds of heartbeating fleet measured")
    parser.add_argument("--verbs", type=int, default=100, help="provision verbs timed")
    parser.add_argument("--repeat", type=int, default=3, help="full listings per API (median)")
    parser.add_argument("--report-timeout", type=float, default=1800.0, help="seconds for the first reports")
    parser.add_argument("--no-ironic", action="store_true", help="skip the Ironic 39 baseline")
    args = parser.parse_args(argv)
    for port, what in ((5672, "RabbitMQ"), (5432, "PostgreSQL")):
        if not procs.reachable(port):
            print(f"fleet_sim: {what} is not listening on 127.0.0.1:{port}", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="kiln-fleet-sim-") as name:
        tmp = Path(name)
        kiln = run_kiln(args, tmp)
        ironic = {"error": "skipped (--no-ironic)"} if args.no_ironic else run_ironic(args, tmp)
        report(args, kiln, ironic)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
