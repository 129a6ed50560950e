"""Where the extra time of N lab deploys at once over 1 alone goes: VM stall, BMC, waits inside Kiln.

Inputs (kept by ``python -m bench.lab_deploy_bench --logs DIR``, read back by ``--replay DIR``):

- ``timeline.json``: each run ("one", "many"): when the deploy verbs went out (``started``), and each
  VM's name, node UUID and the wall-clock time its OS was up;
- ``waits.jsonl``: the conductor's ``[conductor]wait_timing_log`` (agent.conductor.waits): every wait
  inside Kiln on a node's path and every BMC call, {node, kind, start, duration};
- ``cpu.jsonl``: rounds of samples of each VM's qemu threads, every SAMPLE_INTERVAL s:
  {"t": time, "vms": {name: {"pid": qemu pid, "threads": {tid: [comm, cpu_ns, run_delay_ns]}}}},
  read from /proc/<pid>/task/<tid>/schedstat (time on a CPU, time runnable but waiting for one).

A run's time is the wall time to its last OS up, and it is spent on the path of that VM (the
critical one). For the critical VM of each run, within the run's window:

- VM stall: in each sample interval, the largest run-delay increase of its vCPU threads (capped at
  the interval): wall time its guest could have run but had no CPU;
- BMC: the time of its Redfish calls; Kiln waits: its lock, worker and skipped-heartbeat waits.

The extra time (many - one) is split into the differences of those (many's critical VM less the
lone VM), and what is left. The CPU lower bound is the VMs' CPU seconds in the "many" run over the
host's cores: no schedule of that work on those cores finishes sooner.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.conductor import waits

SAMPLE_INTERVAL = 0.5
VCPU = re.compile(r"^CPU \d+/(TCG|KVM)$")
PIDFILE = "/run/libvirt/qemu/{name}.pid"


# --- sampling -------------------------------------------------------------------------------------


def qemu_threads(pid: int) -> dict[str, list]:
    """{tid: [comm, cpu_ns, run_delay_ns]} of process ``pid`` now ({} when it is gone)."""
    threads: dict[str, list] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return threads
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                cpu_ns, delay_ns, _slices = (int(v) for v in f.read().split())
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
        except (OSError, ValueError):
            continue  # the thread ended between listdir and read
        threads[tid] = [comm, cpu_ns, delay_ns]
    return threads


def _qemu_pid(name: str) -> int | None:
    try:
        with open(PIDFILE.format(name=name)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


class Sampler(threading.Thread):
    """Appends a round of samples of the named VMs' qemu threads to ``path`` every SAMPLE_INTERVAL s."""

    def __init__(self, path: Path, names: list[str], interval: float = SAMPLE_INTERVAL) -> None:
        super().__init__(daemon=True, name="vm-cpu-sampler")
        self.path, self.names, self.interval = Path(path), names, interval
        self.stop = threading.Event()

    def run(self) -> None:
        """Sample until ``stop`` is set."""
        with open(self.path, "a", encoding="utf-8") as out:
            while not self.stop.is_set():
                now = time.time()
                vms = {}
                for name in self.names:
                    pid = _qemu_pid(name)
                    if pid is not None:
                        vms[name] = {"pid": pid, "threads": qemu_threads(pid)}
                out.write(json.dumps({"t": round(now, 3), "vms": vms}) + "\n")
                out.flush()
                self.stop.wait(self.interval)


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The rounds of a cpu.jsonl file (or cpu.jsonl.gz), in time order."""
    rounds = [json.loads(line) for line in _text(Path(path)).splitlines() if line.strip()]
    return sorted(rounds, key=lambda r: r["t"])


def _text(path: Path) -> str:
    """The text of ``path``, or of ``path``.gz when only that exists (kept logs may be compressed)."""
    if not path.is_file() and path.with_name(path.name + ".gz").is_file():
        return gzip.decompress(path.with_name(path.name + ".gz").read_bytes()).decode()
    return path.read_text()


# --- arithmetic -----------------------------------------------------------------------------------


def vm_usage(rounds: list[dict], vm: str, start: float, end: float) -> tuple[float, float]:
    """(stall s, CPU s) of ``vm`` over the sample intervals ending in (start, end].

    Stall: per interval, the largest vCPU run-delay increase, at most the interval. CPU: the sum of
    all its threads' CPU time increases. A thread (or qemu process) first seen counts from zero.
    """
    stall = cpu = 0.0
    prev: dict[tuple, tuple[int, int]] = {}
    prev_t: float | None = None
    for r in rounds:
        entry = r["vms"].get(vm)
        now: dict[tuple, tuple[int, int]] = {}
        worst = 0
        used = 0
        for tid, (comm, cpu_ns, delay_ns) in (entry or {}).get("threads", {}).items():
            key = (entry["pid"], tid)
            now[key] = (cpu_ns, delay_ns)
            was_cpu, was_delay = prev.get(key, (0, 0))
            used += max(0, cpu_ns - was_cpu)
            if VCPU.match(comm):
                worst = max(worst, delay_ns - was_delay)
        if prev_t is not None and start < r["t"] <= end:
            cpu += used / 1e9
            stall += min(worst / 1e9, r["t"] - prev_t)
        prev, prev_t = now, r["t"]
    return stall, cpu


def node_waits(entries: list[dict], node: str, start: float, end: float) -> dict[str, float]:
    """Seconds of each wait kind of ``node`` within [start, end] (each wait clipped to the window)."""
    out = dict.fromkeys(waits.KINDS, 0.0)
    for w in entries:
        if w["node"] != node:
            continue
        a, b = max(start, w["start"]), min(end, w["start"] + w["duration"])
        if b > a:
            out[w["kind"]] = out.get(w["kind"], 0.0) + (b - a)
    return out


@dataclass
class RunFigures:
    """One run's wall time and its critical VM's stall, BMC and Kiln-wait seconds; all VMs' CPU."""

    wall: float
    critical: str
    stall: float
    bmc: float
    kiln: float
    kiln_all_nodes: float
    cpu_all_vms: float


def run_figures(run: dict, entries: list[dict], rounds: list[dict]) -> RunFigures:
    """The figures of one run of timeline.json ({"started", "vms": [{"name", "uuid", "os_up"}]})."""
    t0 = run["started"]
    vms = run["vms"]
    if not vms or any(v.get("os_up") is None for v in vms):
        raise ValueError(f"run started at {t0}: every VM needs an os_up time, got {vms}")
    crit = max(vms, key=lambda v: v["os_up"])
    end = crit["os_up"]
    stall, _ = vm_usage(rounds, crit["name"], t0, end)
    own = node_waits(entries, crit["uuid"], t0, end)
    kiln_all = sum(
        sum(node_waits(entries, v["uuid"], t0, v["os_up"])[k] for k in waits.KILN_KINDS) for v in vms
    )
    cpu_all = sum(vm_usage(rounds, v["name"], t0, end)[1] for v in vms)
    return RunFigures(
        wall=end - t0,
        critical=crit["name"],
        stall=stall,
        bmc=own["bmc"],
        kiln=sum(own[k] for k in waits.KILN_KINDS),
        kiln_all_nodes=kiln_all,
        cpu_all_vms=cpu_all,
    )


def attribute(timeline: dict, entries: list[dict], rounds: list[dict]) -> dict[str, Any]:
    """Split the extra wall time of timeline's "many" run over its "one" run; see the module doc."""
    one = run_figures(timeline["runs"]["one"], entries, rounds)
    many = run_figures(timeline["runs"]["many"], entries, rounds)
    cores = int(timeline.get("cores") or os.cpu_count() or 1)
    extra = many.wall - one.wall
    parts = {
        "vm_stall": many.stall - one.stall,
        "bmc": many.bmc - one.bmc,
        "kiln_waits": many.kiln - one.kiln,
    }
    parts["other"] = extra - sum(parts.values())
    return {
        "one": asdict(one),
        "many": asdict(many),
        "vms": len(timeline["runs"]["many"]["vms"]),
        "ratio": many.wall / one.wall if one.wall else float("inf"),
        "extra": extra,
        "parts": parts,
        "cores": cores,
        "cpu_lower_bound": many.cpu_all_vms / cores,
        "loadavg": timeline.get("loadavg"),
        "run_loadavg": {k: timeline["runs"][k].get("loadavg") for k in ("one", "many")},
    }


def load(directory: Path) -> dict[str, Any]:
    """Read timeline.json, waits.jsonl and cpu.jsonl (each maybe .gz) from ``directory`` and attribute."""
    directory = Path(directory)
    for name in ("timeline.json", "waits.jsonl", "cpu.jsonl"):
        if not (directory / name).is_file() and not (directory / (name + ".gz")).is_file():
            raise FileNotFoundError(f"{directory / name} is missing: record it with lab_deploy_bench --logs")
    timeline = json.loads(_text(directory / "timeline.json"))
    entries = waits.parse(_text(directory / "waits.jsonl"), str(directory / "waits.jsonl"))
    return attribute(timeline, entries, read_samples(directory / "cpu.jsonl"))


def report(a: dict[str, Any]) -> str:
    """The attribution as printed lines."""
    one, many, p = a["one"], a["many"], a["parts"]
    lines = [
        f"1 alone: {one['wall']:.1f} s; {a['vms']} at once: {many['wall']:.1f} s ({a['ratio']:.2f}x); "
        f"extra {a['extra']:.1f} s (critical VM {many['critical']}):",
        f"  VM stall (vCPUs runnable, no CPU): {p['vm_stall']:.1f} s "
        f"({many['stall']:.1f} s at once - {one['stall']:.1f} s alone)",
        f"  BMC (Redfish calls):               {p['bmc']:.1f} s ({many['bmc']:.1f} - {one['bmc']:.1f})",
        f"  Kiln waits (lock, worker, beat):   {p['kiln_waits']:.2f} s "
        f"({many['kiln']:.2f} - {one['kiln']:.2f});"
        f" all nodes' Kiln waits at once: {many['kiln_all_nodes']:.2f} s",
        f"  other:                             {p['other']:.1f} s",
        f"CPU lower bound: {many['cpu_all_vms']:.1f} VM CPU seconds / {a['cores']} cores = "
        f"{a['cpu_lower_bound']:.1f} s (at once took {many['wall']:.1f} s)",
    ]
    if a.get("loadavg"):
        lines.append("host load average at the start: " + " ".join(f"{x:.2f}" for x in a["loadavg"]))
    for name, load in (a.get("run_loadavg") or {}).items():
        if load:
            lines.append(f"  at the {name!r} run's deploy verbs: " + " ".join(f"{x:.2f}" for x in load))
    return "\n".join(lines)
