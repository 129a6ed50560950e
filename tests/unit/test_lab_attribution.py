"""bench.lab_attribution's arithmetic on recorded data written here, and its sampler on this process."""

from __future__ import annotations

import gzip
import json
import os
import threading

import pytest

from bench import lab_attribution as la
from bench import lab_deploy_bench

STEP = 0.5
# Per second of each thread: (comm, CPU seconds, run-delay seconds).
ONE = {"vm0": [("CPU 0/TCG", 0.9, 0.05), ("CPU 1/TCG", 0.1, 0.01), ("qemu-system-x86", 0.2, 0.3)]}
MANY_THREADS = [("CPU 0/TCG", 0.4, 0.6), ("CPU 1/TCG", 0.05, 0.3), ("qemu-system-x86", 0.05, 0.9)]


def _rounds(start: float, end: float, rates: dict, restart: dict | None = None) -> list[dict]:
    """Rounds every STEP s from ``start`` to ``end``; a VM in ``restart`` gets a new qemu pid then."""
    out = []
    n = int(round((end - start) / STEP))
    for k in range(n + 1):
        t = start + k * STEP
        vms = {}
        for vm, threads in rates.items():
            pid, born = 100 + int(vm[-1]), start
            if restart and vm in restart and t > restart[vm]:
                pid, born = 900 + int(vm[-1]), restart[vm]
            vms[vm] = {
                "pid": pid,
                "threads": {
                    str(pid * 10 + i): [comm, round(cpu * (t - born) * 1e9), round(delay * (t - born) * 1e9)]
                    for i, (comm, cpu, delay) in enumerate(threads)
                },
            }
        out.append({"t": t, "vms": vms})
    return out


def _recorded(tmp_path):
    """timeline.json, waits.jsonl, cpu.jsonl of a 1-alone run (90 s) and a 4-at-once run (248 s)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    timeline = {
        "cores": 2,
        "loadavg": [6.5, 5.0, 4.0],
        "runs": {
            "one": {"started": 1000.0, "vms": [{"name": "vm0", "uuid": "u0", "os_up": 1090.0}]},
            "many": {
                "started": 2000.0,
                "vms": [
                    {"name": f"vm{i}", "uuid": f"u{i}", "os_up": up}
                    for i, up in enumerate((2200.0, 2240.0, 2248.0, 2230.0))
                ],
            },
        },
    }
    rounds = _rounds(999.5, 1095.0, ONE, restart={"vm0": 1044.5})
    rounds += _rounds(1999.5, 2250.0, {f"vm{i}": MANY_THREADS for i in range(4)})
    w = [
        ("u0", "bmc", 1001.0, 1.5),
        ("u0", "bmc", 1050.0, 0.5),
        ("u0", "lock", 1060.0, 0.01),
        ("u0", "bmc", 900.0, 7.0),  # before the run: not counted
        ("u2", "bmc", 2001.0, 5.0),
        ("u2", "bmc", 2247.5, 3.0),  # clipped at its OS up: 0.5 s
        ("u2", "worker", 2100.0, 0.02),
        ("u2", "lock", 2150.0, 0.03),
        ("u1", "lock", 2120.0, 0.5),  # another node: only in the all-nodes sum
    ]
    (tmp_path / "timeline.json").write_text(json.dumps(timeline))
    (tmp_path / "cpu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reversed(rounds)))
    (tmp_path / "waits.jsonl").write_text(
        "".join(json.dumps({"node": n, "kind": k, "start": s, "duration": d}) + "\n" for n, k, s, d in w)
    )
    return tmp_path


def test_attribution_of_recorded_runs(tmp_path) -> None:
    a = la.load(_recorded(tmp_path))
    one, many, parts = a["one"], a["many"], a["parts"]
    assert one["wall"] == 90.0 and many["wall"] == 248.0 and many["critical"] == "vm2"
    assert a["ratio"] == pytest.approx(248 / 90)
    # Stall: the worst vCPU's run delay (the main thread's larger one is not a vCPU's), across a restart.
    assert one["stall"] == pytest.approx(0.05 * 90)
    assert many["stall"] == pytest.approx(0.6 * 248)
    assert one["bmc"] == pytest.approx(2.0) and many["bmc"] == pytest.approx(5.5)
    assert one["kiln"] == pytest.approx(0.01) and many["kiln"] == pytest.approx(0.05)
    assert many["kiln_all_nodes"] == pytest.approx(0.55)
    assert one["cpu_all_vms"] == pytest.approx(1.2 * 90)
    assert many["cpu_all_vms"] == pytest.approx(4 * 0.5 * 248)
    assert a["extra"] == pytest.approx(158.0)
    assert parts["vm_stall"] == pytest.approx(148.8 - 4.5)
    assert parts["bmc"] == pytest.approx(3.5)
    assert parts["kiln_waits"] == pytest.approx(0.04)
    assert parts["other"] == pytest.approx(158.0 - 144.3 - 3.5 - 0.04)
    assert a["cpu_lower_bound"] == pytest.approx(248.0)
    text = la.report(a)
    assert "extra 158.0 s" in text and "VM stall" in text and "6.50 5.00 4.00" in text


def test_compressed_logs_replay_alike(tmp_path) -> None:
    plain = la.load(_recorded(tmp_path / "plain"))
    packed = _recorded(tmp_path / "packed")
    for name in ("cpu.jsonl", "waits.jsonl"):
        (packed / (name + ".gz")).write_bytes(gzip.compress((packed / name).read_bytes()))
        (packed / name).unlink()
    assert la.load(packed) == plain


def test_stall_is_capped_at_the_interval(tmp_path) -> None:
    # A vCPU whose run delay grows 0.6 s a second over 0.5 s intervals: 0.3 s each, never over 0.5 s;
    # one growing 3 s in an interval of 0.5 s (sampling late) counts 0.5 s.
    rounds = _rounds(0.0, 10.0, {"vm0": [("CPU 0/TCG", 0.1, 6.0)]})
    stall, cpu = la.vm_usage(rounds, "vm0", 0.0, 10.0)
    assert stall == pytest.approx(10.0)
    assert cpu == pytest.approx(1.0)
    assert la.vm_usage(rounds, "vm0", 2.0, 4.0)[0] == pytest.approx(2.0)
    assert la.vm_usage(rounds, "vm9", 0.0, 10.0) == (0.0, 0.0)


def test_run_without_os_up_is_refused() -> None:
    with pytest.raises(ValueError, match="os_up"):
        la.run_figures({"started": 1.0, "vms": [{"name": "vm0", "uuid": "u0", "os_up": None}]}, [], [])


def test_missing_file_named(tmp_path) -> None:
    _recorded(tmp_path)
    (tmp_path / "cpu.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="cpu.jsonl is missing"):
        la.load(tmp_path)


def test_replay_prints_the_attribution(tmp_path, capsys) -> None:
    assert lab_deploy_bench.main(["--replay", str(_recorded(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "1 alone: 90.0 s; 4 at once: 248.0 s (2.76x)" in out
    assert "CPU lower bound: 496.0 VM CPU seconds / 2 cores = 248.0 s" in out


def test_sampler_reads_this_process(tmp_path, monkeypatch) -> None:
    pidfile = tmp_path / "{name}.pid"
    (tmp_path / "vm0.pid").write_text(str(os.getpid()))
    monkeypatch.setattr(la, "PIDFILE", str(pidfile))
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    spinner = threading.Thread(target=spin)
    spinner.start()
    sampler = la.Sampler(tmp_path / "cpu.jsonl", ["vm0", "vm1"], interval=0.05)
    sampler.start()
    try:
        stop.wait(0.5)
    finally:
        sampler.stop.set()
        sampler.join()
        stop.set()
        spinner.join()
    rounds = la.read_samples(tmp_path / "cpu.jsonl")
    assert len(rounds) >= 3
    assert all("vm1" not in r["vms"] for r in rounds)  # no pid file: not sampled
    threads = rounds[-1]["vms"]["vm0"]["threads"]
    assert str(threading.get_native_id()) in threads
    _stall, cpu = la.vm_usage(rounds, "vm0", rounds[0]["t"], rounds[-1]["t"])
    assert cpu > 0.05, f"the spinning thread used {cpu:.3f} CPU s"
