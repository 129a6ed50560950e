"""The ``burnin_gpus`` clean step: load every GPU for a while and fail on what breaks or runs slow.

With NVIDIA DCGM installed (``dcgmi`` on PATH) it runs ``dcgmi diag`` at the level the duration
allows (agent.node.steps.dcgm). Otherwise, when cupy imports, each GPU multiplies FP32 matrices
for the duration; the products are checked against numpy on the CPU and the throughput against
the SKU's datasheet peak in Kiln's catalogue (agent.node.steps.matmul). With neither, the step
fails saying what to install: it never passes without having loaded the GPUs.

A finding names the GPU (PCI address, serial) and the check ``burnin``, like verify_gpus's, so
the conductor quarantines the node the same way.
"""

from __future__ import annotations

import importlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agent.common import gpu_gate
from agent.inventory import catalogue, nvml
from agent.node.steps import dcgm
from agent.node.steps.context import StepContext
from agent.node.steps.errors import StepError

STEP = "burnin_gpus"
DEFAULT_DURATION = 300
MAX_DURATION = 7 * 24 * 3600
DEFAULT_MIN_THROUGHPUT = 0.5
DEFAULT_SIZE = 8192


def _number(args: dict, key: str, default: float, low: float, high: float, integer: bool = False) -> float:
    value = args.get(key, default)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        what = "a whole number" if integer else "a number"
        raise StepError(f"args.{key} must be {what} from {low:g} to {high:g}, not {value!r}")
    return value


def _sku(gpu: dict) -> str | None:
    sku = gpu.get("sku")
    return sku.get("trait") if isinstance(sku, dict) else None


def _cupy() -> tuple[Any | None, str]:
    """The cupy module, or None and why it cannot be used."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as exc:
        return None, f"cupy does not import ({exc})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - CUDA raises its own error classes
        return None, f"cupy imports but CUDA finds no usable GPU ({exc})"
    if count < 1:
        return None, "cupy imports but CUDA lists no GPU"
    return cupy, ""


def _burn_one(cupy: Any, index: int, size: int, seconds: float) -> dict[str, Any]:
    from agent.node.steps import matmul  # numpy comes with cupy; a ramdisk without either never loads it

    with cupy.cuda.Device(index):
        return matmul.burn(cupy, cupy.cuda.runtime.deviceSynchronize, size, seconds, seed=index)


def compute_burnin(
    cupy: Any, gpus: list[dict], duration: float, min_fraction: float, size: int
) -> dict[str, Any]:
    """Burn every CUDA device in parallel for ``duration`` seconds; per GPU its figures and findings."""
    count = cupy.cuda.runtime.getDeviceCount()
    addresses = [nvml.normalize_bus_id(cupy.cuda.runtime.deviceGetPCIBusId(i)) for i in range(count)]
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="burnin") as pool:
        runs = list(pool.map(lambda i: _burn_one(cupy, i, size, duration), range(count)))
    by_address = {g.get("pci_address"): g for g in gpus}
    return judge_all(list(zip(addresses, runs, strict=True)), by_address, min_fraction)


def judge_all(
    runs: list[tuple[str | None, dict]], gpus: dict[str, dict], min_fraction: float
) -> dict[str, Any]:
    """The step's result from each device's measurement: per GPU the figures, and the findings."""
    from agent.node.steps import matmul

    out, findings, unchecked = [], [], []
    for address, measured in runs:
        gpu = gpus.get(address) or {"pci_address": address}
        sku = _sku(gpu)
        wrong, not_judged = matmul.judge(measured, catalogue.peak_tflops(sku), min_fraction, sku)
        out.append({"pci_address": address, "serial": gpu.get("serial"), "sku": sku, **measured})
        for message in wrong:
            findings.append(
                {"check": "burnin", "pci_address": address, "serial": gpu.get("serial"), "message": message}
            )
        if not_judged:
            unchecked.append(f"GPU {address}: {not_judged}")
    seen = {address for address, _ in runs}
    for address, gpu in sorted(gpus.items(), key=lambda kv: str(kv[0])):
        if gpu.get("vendor_id") == "0x10de" and address not in seen:
            findings.append(
                {
                    "check": "burnin",
                    "pci_address": address,
                    "serial": gpu.get("serial"),
                    "message": "CUDA lists no GPU at this PCI address: it could not be burned in",
                }
            )
    return {
        "method": "matmul",
        "min_throughput": min_fraction,
        "gpus": out,
        "findings": findings,
        "unchecked": unchecked,
    }


def burnin_gpus(ctx: StepContext, args: dict) -> dict[str, Any]:
    """Burn the node's GPUs in for ``args["duration"]`` seconds (DCGM, else cupy); fail naming each finding.

    ``args``: ``duration`` (seconds, default 300), ``min_throughput`` (fraction of the SKU's FP32
    peak a matrix multiply must reach, default 0.5), ``size`` (matrix order, default 8192).
    """
    duration = _number(args, "duration", DEFAULT_DURATION, 1, MAX_DURATION)
    min_fraction = _number(args, "min_throughput", DEFAULT_MIN_THROUGHPUT, 0.0, 1.0)
    size = int(_number(args, "size", DEFAULT_SIZE, 16, 65536, integer=True))
    gpus = gpu_gate.physical_gpus(ctx.inventory() or {})
    if not gpus:
        return {
            "method": None,
            "duration": duration,
            "gpus": [],
            "findings": [],
            "note": "no GPUs to burn in",
        }
    if not ctx.live:
        raise StepError(
            f"cannot burn in {len(gpus)} GPU(s): the inventory describes another machine (a captured tree or "
            "simulated node); a burn-in here would load this machine's GPUs instead"
        )
    dcgmi = shutil.which("dcgmi")
    if dcgmi:
        result = dcgm.run_diag(dcgmi, dcgm.level_for(duration), gpus)
    else:
        cupy, why = _cupy()
        if cupy is None:
            raise StepError(
                f"cannot burn in {len(gpus)} GPU(s): dcgmi (NVIDIA DCGM) is not on PATH and {why}. "
                "Install DCGM (datacenter-gpu-manager) or cupy (cupy-cuda12x) in the agent's ramdisk, "
                "or leave burnin_gpus out of cleaning"
            )
        result = compute_burnin(cupy, gpus, duration, min_fraction, size)
    result["duration"] = duration
    if result["findings"]:
        raise StepError(f"GPU burn-in failed: {gpu_gate.describe(result['findings'])}", details=result)
    return result
