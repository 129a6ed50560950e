"""The ``clear_gpu_memory`` clean step: reset each GPU so nothing of the last tenant stays in its memory.

NVML has no reset call of its own in nvidia-ml-py; the documented way is ``nvidia-smi --gpu-reset
-i <PCI bus id>``, which needs root and no process using the GPU (since Ampere, GPUs with NVLink
reset one by one; on Ampere NVSwitch systems Fabric Manager must run). So, per NVIDIA GPU: NVML
(when it imports and initialises) says which processes use it; an idle GPU is reset through
nvidia-smi; a GPU in use, or one the driver will not reset, is left as it is and the result says
why. The step never fails for a GPU it could not clear: the turnover record states it, per GPU.
GPUs of other vendors are listed as not cleared (Kiln resets NVIDIA GPUs only).
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
from typing import Any

from agent.common import gpu_gate
from agent.inventory import nvml as nvml_facts
from agent.node.steps.context import StepContext

STEP = "clear_gpu_memory"
METHOD = "gpu-reset (nvidia-smi --gpu-reset)"
RESET_TIMEOUT_S = 120
NOT_LIVE = "not reset: the inventory describes another machine (a captured tree or simulated node)"


def load_nvml() -> tuple[Any | None, str | None]:
    """pynvml, initialised; or None and why NVML cannot be used."""
    try:
        module = importlib.import_module("pynvml")
    except ImportError as exc:
        return None, f"NVML not available: nvidia-ml-py does not import ({exc})"
    try:
        module.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVML raises its own error classes
        return None, f"NVML not available: nvmlInit failed ({exc})"
    return module, None


def _pids(nvml: Any, handle: Any) -> list[int] | None:
    """PIDs of the compute and graphics processes on a GPU; None when NVML cannot tell."""
    pids: set[int] = set()
    for name in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        try:
            pids.update(int(p.pid) for p in getattr(nvml, name)(handle))
        except Exception:  # noqa: BLE001 - not supported, or no NVML answer
            return None
    return sorted(pids)


def processes(nvml: Any) -> dict[str, list[int] | None]:
    """PCI address -> PIDs using that GPU (None: unknown), for every GPU NVML lists; NVML shut down after."""
    out: dict[str, list[int] | None] = {}
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            address = nvml_facts.normalize_bus_id(getattr(nvml.nvmlDeviceGetPciInfo(handle), "busId", None))
            if address:
                out[address] = _pids(nvml, handle)
    finally:
        # nvidia-smi refuses to reset a GPU another NVML client holds open: let go of it first.
        try:
            nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass
    return out


def reset(smi: str, address: str) -> tuple[bool, str]:
    """Reset one GPU with nvidia-smi; (done, what nvidia-smi said)."""
    bus_id = f"0000{address}" if len(address.split(":")[0]) == 4 else address  # nvidia-smi's 8-digit domain
    try:
        done = subprocess.run(
            [smi, "--gpu-reset", "-i", bus_id],
            capture_output=True,
            text=True,
            timeout=RESET_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"nvidia-smi --gpu-reset -i {bus_id} ran longer than {RESET_TIMEOUT_S} s"
    except OSError as exc:
        return False, f"nvidia-smi could not be started: {exc}"
    said = " ".join((done.stdout + " " + done.stderr).split())
    if done.returncode == 0:
        return True, said
    return False, f"nvidia-smi --gpu-reset -i {bus_id} exited {done.returncode}: {said or 'no message'}"


def _entry(gpu: dict, cleared: bool, method: str | None, why: str | None, **more: Any) -> dict[str, Any]:
    return {
        "pci_address": gpu.get("pci_address"),
        "serial": gpu.get("serial"),
        "cleared": cleared,
        "method": method,
        "why_not": why,
        **more,
    }


def clear(gpus: list[dict], nvml: Any | None, nvml_why: str | None, smi: str | None) -> list[dict[str, Any]]:
    """Reset every idle NVIDIA GPU among ``gpus``; per GPU whether its memory was cleared, how, or why not."""
    nvidia = [g for g in gpus if g.get("vendor_id") == "0x10de"]
    busy = processes(nvml) if nvml is not None and nvidia else {}
    out = []
    for gpu in gpus:
        address = gpu.get("pci_address")
        if gpu.get("vendor_id") != "0x10de":
            vendor = gpu.get("vendor") or gpu.get("vendor_id")
            out.append(
                _entry(gpu, False, None, f"not reset: Kiln clears the memory of NVIDIA GPUs only ({vendor})")
            )
        elif nvml is None:
            out.append(_entry(gpu, False, None, nvml_why or "NVML not available"))
        elif address not in busy:
            out.append(_entry(gpu, False, None, "NVML lists no GPU at this PCI address"))
        elif busy[address] is None:
            out.append(_entry(gpu, False, None, "in use unknown: NVML could not list the GPU's processes"))
        elif busy[address]:
            pids = ", ".join(map(str, busy[address]))
            out.append(
                _entry(gpu, False, None, f"in use by process(es) {pids}: a GPU in use cannot be reset")
            )
        elif smi is None:
            out.append(_entry(gpu, False, None, "nvidia-smi is not on PATH: the GPU reset runs through it"))
        else:
            done, said = reset(smi, address)
            if done:
                out.append(_entry(gpu, True, METHOD, None, output=said))
            elif "not supported" in said.lower():
                out.append(_entry(gpu, False, None, f"reset not supported: {said}"))
            else:
                out.append(_entry(gpu, False, None, f"reset failed: {said}"))
    return out


def clear_gpu_memory(ctx: StepContext, args: dict) -> dict[str, Any]:
    """Reset the node's GPUs to clear their memory; result ``gpus``: per GPU cleared, method or why not."""
    gpus = gpu_gate.physical_gpus(ctx.inventory() or {})
    if not ctx.live:
        why = NOT_LIVE
        return {"cleared": False, "gpus": [_entry(g, False, None, why) for g in gpus]}
    has_nvidia = any(g.get("vendor_id") == "0x10de" for g in gpus)
    nvml, why = load_nvml() if has_nvidia else (None, None)
    entries = clear(gpus, nvml, why, shutil.which("nvidia-smi"))
    return {"cleared": bool(entries) and all(e["cleared"] for e in entries), "gpus": entries}
