#!/usr/bin/env bash
# Run on a machine with a real NVIDIA GPU: inventory it, compare with nvidia-smi, capture its tree.
# Usage: tools/gpu-host-check.sh OUTDIR    (writes at most 8 files there)
set -u
out=${1:?output dir}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
py=${PYTHON:-python3}
{
    echo "== uname"; uname -a
    echo "== nvidia-smi"; nvidia-smi --query-gpu=pci.bus_id,name,uuid,serial,memory.total,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max,mig.mode.current,vbios_version,driver_version --format=csv 2>&1
    echo "== nvidia-smi topo"; nvidia-smi topo -m 2>&1 | head -20
    echo "== /proc/driver/nvidia/gpus"; for f in /proc/driver/nvidia/gpus/*/information; do echo "-- $f"; cat "$f"; done 2>&1
    echo "== pci devices of GPU class"; for d in /sys/bus/pci/devices/*; do c=$(cat $d/class 2>/dev/null); case $c in 0x03*|0x12*|0x0680*) echo "$(basename $d) $(cat $d/vendor):$(cat $d/device) $c numa=$(cat $d/numa_node 2>/dev/null) link=$(cat $d/current_link_speed 2>/dev/null)/x$(cat $d/current_link_width 2>/dev/null) max=$(cat $d/max_link_speed 2>/dev/null)/x$(cat $d/max_link_width 2>/dev/null) driver=$(basename $(readlink $d/driver) 2>/dev/null)";; esac; done
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
nvidia-smi -q > "$out/nvidia-smi-q.txt" 2>&1
$py -m agent.cmd.capture --root / --output /tmp/gpu-capture >> "$out/report.txt" 2>&1 \
    && tar -C /tmp -czf "$out/gpu-host-capture.tar.gz" gpu-capture
echo "== real-host tests on this machine (lsblk/ip comparison)" >> "$out/report.txt"
timeout 120 $py -m pytest -q -p no:cacheprovider tests/unit/inventory/test_real_host.py >> "$out/report.txt" 2>&1
ls -la "$out" >> "$out/report.txt"
tail -n 80 "$out/report.txt"
