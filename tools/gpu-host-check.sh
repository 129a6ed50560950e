#!/usr/bin/env bash
# Run on a machine with a real NVIDIA GPU: inventory it (health included), compare with nvidia-smi,
# run a short burn-in, run the real-host tests and capture its tree. Read-only towards the GPU's
# settings: no nvidia-smi -pm/-mig/-r, no resets. Without a GPU every step says so and goes on.
# Usage: tools/gpu-host-check.sh OUTDIR    (writes at most 8 files there)
#   BURN_SECONDS (default 25): length of the timed matrix-multiply burn-in.
set -u
out=${1:?output dir}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
smi() { if command -v nvidia-smi >/dev/null; then timeout 60 nvidia-smi "$@" 2>&1; else echo "nvidia-smi: not installed"; fi; }
{
    echo "== uname"; uname -a
    echo "== nvidia-smi"; smi --query-gpu=pci.bus_id,name,uuid,serial,memory.total,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max,mig.mode.current,vbios_version,driver_version --format=csv
    echo "== nvidia-smi health query"; smi --query-gpu=pci.bus_id,persistence_mode,ecc.mode.current,ecc.mode.pending,ecc.errors.corrected.volatile.total,ecc.errors.uncorrected.volatile.total,ecc.errors.corrected.aggregate.total,ecc.errors.uncorrected.aggregate.total,retired_pages.sbe,retired_pages.dbe,retired_pages.pending,remapped_rows.correctable,remapped_rows.uncorrectable,remapped_rows.pending,remapped_rows.failure,power.limit,enforced.power.limit,power.default_limit,temperature.gpu,clocks_event_reasons.active --format=csv
    echo "== nvidia-smi topo"; smi topo -m | head -20
    echo "== /proc/driver/nvidia/gpus"; for f in /proc/driver/nvidia/gpus/*/information; do echo "-- $f"; cat "$f"; done 2>&1
    echo "== pci devices of GPU class"; for d in /sys/bus/pci/devices/*; do c=$(cat $d/class 2>/dev/null); case $c in 0x03*|0x12*|0x0680*) echo "$(basename $d) $(cat $d/vendor):$(cat $d/device) $c numa=$(cat $d/numa_node 2>/dev/null) link=$(cat $d/current_link_speed 2>/dev/null)/x$(cat $d/current_link_width 2>/dev/null) max=$(cat $d/max_link_speed 2>/dev/null)/x$(cat $d/max_link_width 2>/dev/null) driver=$(basename $(readlink $d/driver) 2>/dev/null)";; esac; done
    echo "== kernel log: NVRM lines"; $py - <<'PY'
from agent.inventory.base import Root
from agent.inventory import kmsg
root = Root("/")
records = kmsg.read_records(root) or []
print(f"{len(records)} records, first seq {records[0].seq if records else None}; errors {[e.as_dict() for e in root.errors]}")
for r in records:
    if "NVRM" in r.message:
        print(f"[{r.seconds:12.6f}] {r.message}")
PY
    echo "== kiln-inventory table"; $py -m agent.cmd.inventory --format table 2>&1
    echo "== timing (in-process, median of 20 after warm-up; NVML off and on)"
    $py - <<'PY'
import statistics, time
from agent.inventory.collect import collect
for nvml in (False, True):
    collect("/", use_nvml=nvml)
    ts = []
    for _ in range(20):
        t = time.perf_counter(); collect("/", use_nvml=nvml); ts.append(time.perf_counter() - t)
    print(f"use_nvml={nvml}: median {statistics.median(ts)*1000:.2f} ms, min {min(ts)*1000:.2f} ms")
PY
} > "$out/report.txt" 2>&1
$py -m agent.cmd.inventory --format json > "$out/inventory.json" 2> "$out/inventory.stderr"
$py -m agent.cmd.inventory --format ironic > "$out/ironic.json" 2>> "$out/inventory.stderr"
smi -q > "$out/nvidia-smi-q.txt"
smi nvlink -s > "$out/nvidia-smi-nvlink.txt"
{
    echo "== kiln health (NVML on) and kernel log, before the burn-in"
    $py - "$out/inventory.json" <<'PY'
import json, sys
inv = json.load(open(sys.argv[1]))
for gpu in inv["gpus"]:
    print(gpu["pci_address"], json.dumps(gpu.get("health"), indent=1, sort_keys=True))
print("kernel_log", json.dumps(inv.get("kernel_log"), sort_keys=True))
print("nvml/kmsg errors", [e for e in inv["errors"] if e["path"] in ("nvml", "/dev/kmsg")])
PY
    echo "== burn-in: matrix multiply checked against the CPU, then ${BURN_SECONDS:-25} s of bf16 products"
    BURN_SECONDS=${BURN_SECONDS:-25} timeout 150 $py - <<'PY'
import os, time
try:
    import torch
except ImportError:
    raise SystemExit("burn-in skipped: no torch")
if not torch.cuda.is_available():
    raise SystemExit("burn-in skipped: no CUDA device")
dev = torch.device("cuda")
print("device", torch.cuda.get_device_name(dev), "torch", torch.__version__)
torch.backends.cuda.matmul.allow_tf32 = False
g = torch.Generator().manual_seed(1234)
a, b = torch.randn(4096, 4096, generator=g), torch.randn(4096, 4096, generator=g)
ref = a.double() @ b.double()
got = (a.to(dev) @ b.to(dev)).double().cpu()
err = ((got - ref).abs().max() / ref.abs().max()).item()
print(f"fp32 4096^3 product vs CPU float64: max relative error {err:.2e} -> {'OK' if err < 1e-4 else 'MISMATCH'}")
n = 8192
x = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
y = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
for _ in range(3):
    z = x @ y
torch.cuda.synchronize()
check = (x[:256].float() @ y.float()[:, :256]).cpu()
seconds, count, t0 = float(os.environ["BURN_SECONDS"]), 0, time.perf_counter()
while time.perf_counter() - t0 < seconds:
    for _ in range(50):
        z = x @ y
    torch.cuda.synchronize()
    count += 50
elapsed = time.perf_counter() - t0
rel = ((z[:256, :256].float().cpu() - check).abs().max() / check.abs().max()).item()
print(f"bf16 {n}^3: {count} products in {elapsed:.1f} s = {2 * n**3 * count / elapsed / 1e12:.0f} TFLOP/s;"
      f" last product vs fp32: max relative error {rel:.2e} -> {'OK' if rel < 2e-2 else 'MISMATCH'}")
PY
    echo "== nvidia-smi right after the burn-in"; smi --query-gpu=clocks.sm,clocks.max.sm,power.draw,temperature.gpu,clocks_event_reasons.active,ecc.errors.uncorrected.volatile.total --format=csv
    echo "== kiln health after the burn-in (what changed)"
    $py - "$out/inventory.json" <<'PY'
import json, sys
from agent.inventory.collect import collect
before = {g["pci_address"]: g.get("health") or {} for g in json.load(open(sys.argv[1]))["gpus"]}
inv = collect("/")
for gpu in inv["gpus"]:
    old, new = before.get(gpu["pci_address"], {}), gpu["health"]
    changed = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}
    print(gpu["pci_address"], "changed:", json.dumps(changed, sort_keys=True) if changed else "nothing")
PY
} >> "$out/report.txt" 2>&1
$py -m agent.cmd.capture --root / --output /tmp/gpu-capture >> "$out/report.txt" 2>&1 \
    && tar -C /tmp -czf "$out/gpu-host-capture.tar.gz" gpu-capture
echo "== real-host tests on this machine (lsblk/ip comparison)" >> "$out/report.txt"
timeout 120 $py -m pytest -q -p no:cacheprovider tests/unit/inventory/test_real_host.py >> "$out/report.txt" 2>&1
ls -la "$out" >> "$out/report.txt"
tail -n 120 "$out/report.txt"
