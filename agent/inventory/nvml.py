"""Optional NVML enrichment of NVIDIA GPUs (UUID, serial, memory, MIG mode, health).

Used only when ``pynvml`` (nvidia-ml-py) imports, the inventory root is the live
host ``/`` and the NVIDIA driver is loaded (``/proc/driver/nvidia`` exists). Any NVML
failure is recorded in ``root.errors``; the sysfs values stay as they were.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from agent.inventory import gpu_health
from agent.inventory.base import Root
from agent.inventory.model import Gpu

_BUS_ID_RE = re.compile(r"^(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$")


def normalize_bus_id(bus_id: str | bytes | None) -> str | None:
    """Turn NVML's '00000000:18:00.0' (or '18:00.0') into sysfs's '0000:18:00.0'; None when garbled."""
    if isinstance(bus_id, bytes):
        bus_id = bus_id.decode("ascii", "replace")
    if not bus_id:
        return None
    match = _BUS_ID_RE.match(bus_id.strip().rstrip("\x00"))
    if not match:
        return None
    domain, bus, dev, fn = match.groups()
    return f"{int(domain or '0', 16):04x}:{int(bus, 16):02x}:{int(dev, 16):02x}.{fn}"


def available(root: Root) -> Any | None:
    """Return the pynvml module when NVML can be used for this root, else None."""
    if root.path != "/" or not root.exists("/proc/driver/nvidia"):
        return None
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        return None


def enrich(gpus: list[Gpu], root: Root, nvml: Any | None = None) -> dict | None:
    """Add NVML facts to NVIDIA GPUs in place; return {'driver_version', 'cuda_driver_version'} or None."""
    nvml = nvml or available(root)
    if nvml is None:
        return None
    by_address = {g["pci_address"]: g for g in gpus if g["vendor_id"] == "0x10de"}
    try:
        nvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVML raises its own error classes
        root.note("nvml", f"nvmlInit failed: {exc}")
        return None
    info: dict = {"driver_version": None, "cuda_driver_version": None}
    try:
        info["driver_version"] = _call(root, "nvmlSystemGetDriverVersion", nvml.nvmlSystemGetDriverVersion)
        cuda = _call(root, "nvmlSystemGetCudaDriverVersion", nvml.nvmlSystemGetCudaDriverVersion)
        if isinstance(cuda, int):
            info["cuda_driver_version"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        count = _call(root, "nvmlDeviceGetCount", nvml.nvmlDeviceGetCount) or 0
        for index in range(count):
            handle = _call(
                root, f"nvmlDeviceGetHandleByIndex({index})", nvml.nvmlDeviceGetHandleByIndex, index
            )
            if handle is None:
                continue
            pci = _call(root, f"nvmlDeviceGetPciInfo({index})", nvml.nvmlDeviceGetPciInfo, handle)
            address = normalize_bus_id(getattr(pci, "busId", None))
            gpu = by_address.get(address or "")
            if gpu is None:
                root.note("nvml", f"GPU {index} at bus id {address!r} has no matching PCI function")
                continue
            _fill(root, nvml, handle, gpu)
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception as exc:  # noqa: BLE001
            root.note("nvml", f"nvmlShutdown failed: {exc}")
    return info


def _fill(root: Root, nvml: Any, handle: Any, gpu: Gpu) -> None:
    where = gpu["pci_address"]
    uuid = _text(_call(root, f"nvmlDeviceGetUUID({where})", nvml.nvmlDeviceGetUUID, handle))
    serial = _text(_call(root, f"nvmlDeviceGetSerial({where})", nvml.nvmlDeviceGetSerial, handle))
    memory = _call(root, f"nvmlDeviceGetMemoryInfo({where})", nvml.nvmlDeviceGetMemoryInfo, handle)
    if uuid:
        gpu["uuid"] = uuid
    if serial:
        gpu["serial"] = serial
    total = getattr(memory, "total", None)
    if isinstance(total, int) and total > 0:
        gpu["memory_bytes"] = total
    gpu["mig_mode"] = _mig_mode(nvml, handle)
    if "health" in gpu:
        try:
            gpu_health.fill_health(root, nvml, handle, where, gpu["health"])
        except Exception as exc:  # noqa: BLE001 - an odd pynvml answer must not cost the inventory
            root.note("nvml", f"health of {where} not read: {type(exc).__name__}: {exc}")


def _mig_mode(nvml: Any, handle: Any) -> str | None:
    """Return 'enabled'/'disabled', or None where MIG is not supported (no error: most GPUs lack it)."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported on non-MIG GPUs
        return None
    return "enabled" if current == 1 else "disabled" if current == 0 else None


def _call(root: Root, what: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - any NVML failure is recorded, never raised
        root.note("nvml", f"{what} failed: {exc}")
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.strip() or None
