"""Kiln's inventory against ironic-python-agent 13.0.0's, on this machine, in one run.

    python -m bench.run [--runs N] [--process-runs N] [--warmup N]   (what `tox -e bench` runs)

Prints, for the same host: in-process time of one full inventory (median of N after
warm-up; IPA timed inside its own interpreter by bench/ipa_driver.py), whole-process wall
time of `kiln-inventory --format ironic` against a `python -c` that prints IPA's
list_hardware_info(), the peak RSS of those processes (children included), and Kiln on
the largest fixture tree. IPA is installed into .bench/ipa13 (ignored by git) if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IPA_VENV = os.path.join(REPO, ".bench", "ipa13")
IPA_PYTHON = os.path.join(IPA_VENV, "bin", "python")
IPA_VERSION = "13.0.0"
DRIVER = os.path.join(REPO, "bench", "ipa_driver.py")
LARGEST_TREE = os.path.join(REPO, "tests", "fixtures", "sysfs", "hgx-h100")
# IPA shells out to these; on a host without them it fails (udevadm) or reports less.
IPA_TOOLS = {"lshw": "lshw", "lsblk": "util-linux", "lscpu": "util-linux", "udevadm": "udev"}
IPA_ONCE = (
    "import importlib, json; importlib.import_module('ironic_python_agent.config'); "
    "from ironic_python_agent import encoding, hardware; "
    "print(json.dumps(hardware.list_hardware_info(), cls=encoding.RESTJSONEncoder))"
)
TARGETS = {"inprocess": 20.0, "process": 5.0, "memory": 0.5}


def ensure_ipa() -> str | None:
    """Install IPA 13 into .bench/ipa13 when missing; return why it cannot run, or None."""
    missing = sorted({pkg for tool, pkg in IPA_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        return f"IPA needs {', '.join(IPA_TOOLS)}: run `apt-get install -y {' '.join(missing)}`"
    if _ipa_importable():
        return None
    print(f"installing ironic-python-agent=={IPA_VERSION} into {IPA_VENV} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", IPA_VENV], check=True)
    pip = [IPA_PYTHON, "-m", "pip", "install", "-q", f"ironic-python-agent=={IPA_VERSION}"]
    done = subprocess.run(pip, capture_output=True, text=True)
    if done.returncode != 0:
        return f"pip install ironic-python-agent=={IPA_VERSION} failed: {done.stderr.strip()[-500:]}"
    return None if _ipa_importable() else f"{IPA_VENV} has no importable ironic_python_agent"


def _ipa_importable() -> bool:
    """Say whether the IPA venv exists and holds the expected IPA version."""
    if not os.path.exists(IPA_PYTHON):
        return False
    check = "import importlib.metadata as m; print(m.version('ironic-python-agent'))"
    done = subprocess.run([IPA_PYTHON, "-c", check], capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == IPA_VERSION


def kiln_inprocess(root: str, runs: int, warmup: int) -> dict:
    """Time collect() + to_ironic() + JSON encoding in this process."""
    t0 = time.perf_counter()
    from agent.inventory.collect import collect
    from agent.inventory.ironic import to_ironic

    import_s = time.perf_counter() - t0
    for _ in range(warmup):
        json.dumps(to_ironic(collect(root)))
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        json.dumps(to_ironic(collect(root)))
        samples.append(time.perf_counter() - t)
    return {"median_s": statistics.median(samples), "min_s": min(samples), "import_s": import_s}


def ipa_inprocess(runs: int, warmup: int) -> dict:
    """Time IPA's list_hardware_info() inside IPA's interpreter (bench/ipa_driver.py)."""
    done = subprocess.run(
        [IPA_PYTHON, DRIVER, "time", str(runs), str(warmup)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_process(argv: list[str], runs: int) -> dict:
    """Run argv N times; median wall time and the largest peak RSS (the process and its children)."""
    walls, rss_kib = [], []
    for _ in range(runs):
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = proc.stdout.read()  # type: ignore[union-attr]
        proc.stdout.close()  # type: ignore[union-attr]
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - t)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])} ... exited {proc.returncode}")
        json.loads(out)  # it must have printed a whole JSON document
        rss_kib.append(usage.ru_maxrss)  # Linux: KiB, max over the child and its waited-for children
    return {"median_s": statistics.median(walls), "min_s": min(walls), "maxrss_kib": max(rss_kib)}


def kiln_command() -> list[str]:
    """This interpreter's kiln-inventory script (not a pyenv shim on PATH), else ``-m``."""
    exe = os.path.join(os.path.dirname(sys.executable), "kiln-inventory")
    return [exe] if os.access(exe, os.X_OK) else [sys.executable, "-m", "agent.cmd.inventory"]


def _ratio(slow: float, fast: float) -> str:
    return f"{slow / fast:8.1f}x" if fast > 0 else "     n/a"


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and print the figures; 2 when IPA cannot run here."""
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=20, help="in-process runs per side (default 20)")
    p.add_argument("--process-runs", type=int, default=7, help="whole-process runs per side (default 7)")
    p.add_argument("--warmup", type=int, default=2, help="in-process warm-up runs (default 2)")
    args = p.parse_args(argv)

    host = f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs"
    print(f"host: {host}, Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}")
    why = ensure_ipa()
    if why:
        print(f"bench: cannot run ironic-python-agent {IPA_VERSION}: {why}", file=sys.stderr)
        return 2

    kiln_in = kiln_inprocess("/", args.runs, args.warmup)
    ipa_in = ipa_inprocess(args.runs, args.warmup)
    kiln_proc = run_process(kiln_command() + ["--format", "ironic"], args.process_runs)
    ipa_proc = run_process([IPA_PYTHON, "-c", IPA_ONCE], args.process_runs)
    tree = kiln_inprocess(LARGEST_TREE, args.runs, args.warmup) if os.path.isdir(LARGEST_TREE) else None

    ms = 1000.0
    print(f"\nin-process, one full inventory (median of {args.runs} after {args.warmup} warm-up):")
    print(f"  kiln  collect('/') + to_ironic + json   {kiln_in['median_s'] * ms:9.2f} ms")
    print(f"  IPA   list_hardware_info() + json       {ipa_in['median_s'] * ms:9.2f} ms")
    ratio_in = ipa_in["median_s"] / kiln_in["median_s"]
    target = f"target >= {TARGETS['inprocess']:.0f}x"
    print(f"  kiln is {_ratio(ipa_in['median_s'], kiln_in['median_s'])} faster ({target})")
    print(f"  (best runs: kiln {kiln_in['min_s'] * ms:.2f} ms, IPA {ipa_in['min_s'] * ms:.2f} ms)")
    print(f"\nwhole process, start to JSON printed (median of {args.process_runs}):")
    print(
        f"  kiln  {' '.join(os.path.basename(a) for a in kiln_command())} --format ironic  "
        f"{kiln_proc['median_s'] * ms:9.1f} ms"
    )
    print(f"  IPA   python -c list_hardware_info()    {ipa_proc['median_s'] * ms:9.1f} ms")
    ratio_proc = ipa_proc["median_s"] / kiln_proc["median_s"]
    target = f"target >= {TARGETS['process']:.0f}x"
    print(f"  kiln is {_ratio(ipa_proc['median_s'], kiln_proc['median_s'])} faster ({target})")
    print("\npeak RSS of those processes (children included):")
    print(f"  kiln  {kiln_proc['maxrss_kib'] / 1024:9.1f} MiB")
    print(f"  IPA   {ipa_proc['maxrss_kib'] / 1024:9.1f} MiB")
    ratio_mem = kiln_proc["maxrss_kib"] / ipa_proc["maxrss_kib"]
    print(f"  kiln / IPA = {ratio_mem:.2f} (target <= {TARGETS['memory']})")
    if tree:
        print(
            f"\nkiln on the largest fixture tree ({os.path.relpath(LARGEST_TREE, REPO)}), in-process median:"
        )
        print(f"  collect + to_ironic + json            {tree['median_s'] * ms:9.2f} ms")
    print("\nconductor over the local RabbitMQ (full run: python -m bench.conductor_bench):", flush=True)
    __import__("bench.conductor_bench").conductor_bench.main(["--agents", "100", "--window", "5"])
    verdict = {
        "inprocess_ratio": round(ratio_in, 1),
        "process_ratio": round(ratio_proc, 1),
        "memory_ratio": round(ratio_mem, 2),
        "targets_met": ratio_in >= TARGETS["inprocess"]
        and ratio_proc >= TARGETS["process"]
        and ratio_mem <= TARGETS["memory"],
    }
    print(
        f"\nload average at the end: {os.getloadavg()[0]:.2f} (other work on this machine skews the figures)"
    )
    print(json.dumps(verdict))
    return 0


if __name__ == "__main__":
    sys.exit(main())
