"""NVML enrichment: the paths that run here (no driver, no pynvml) and bus-id matching."""

from __future__ import annotations

import importlib.util

from agent.inventory import nvml
from agent.inventory.base import Root
from tests.unit.inventory.treebuild import Tree


def test_normalize_bus_id():
    assert nvml.normalize_bus_id("00000000:18:00.0") == "0000:18:00.0"
    assert nvml.normalize_bus_id(b"00000000:BA:00.0\x00") == "0000:ba:00.0"
    assert nvml.normalize_bus_id("0001:3A:00.1") == "0001:3a:00.1"
    assert nvml.normalize_bus_id("18:00.0") == "0000:18:00.0"
    assert nvml.normalize_bus_id("garbage") is None
    assert nvml.normalize_bus_id("") is None
    assert nvml.normalize_bus_id(None) is None


def test_not_available_for_a_captured_tree_even_with_a_driver_dir(tmp_path):
    Tree(tmp_path).mkdir("/proc/driver/nvidia/gpus")
    assert nvml.available(Root(str(tmp_path))) is None


def test_not_available_without_the_driver_or_the_module():
    root = Root("/")
    driver = root.exists("/proc/driver/nvidia")
    module = importlib.util.find_spec("pynvml") is not None
    assert (nvml.available(root) is not None) == (driver and module)


def test_enrich_without_nvml_leaves_gpus_alone(tmp_path):
    gpu = {"pci_address": "0000:18:00.0", "vendor_id": "0x10de", "uuid": None, "memory_bytes": None}
    root = Root(str(tmp_path))
    assert nvml.enrich([gpu], root) is None
    assert gpu == {"pci_address": "0000:18:00.0", "vendor_id": "0x10de", "uuid": None, "memory_bytes": None}
    assert root.errors == []


class _NvmlError(Exception):
    pass


class _PciInfo:
    def __init__(self, bus_id: bytes) -> None:
        self.busId = bus_id


class _Memory:
    total = 85520809984


class _StandInNvml:
    """Stands in for pynvml (no NVIDIA GPU on this machine): two GPUs, one serial read fails."""

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        return "550.90.07"

    def nvmlSystemGetCudaDriverVersion(self):
        return 12040

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetPciInfo(self, handle):
        return _PciInfo([b"00000000:18:00.0", b"00000000:99:00.0"][handle])

    def nvmlDeviceGetUUID(self, handle):
        return "GPU-3f0c2a1e-7b4d-4c6e-9a8b-1d2e3f405000"

    def nvmlDeviceGetSerial(self, handle):
        raise _NvmlError("Not Supported")

    def nvmlDeviceGetMemoryInfo(self, handle):
        return _Memory()

    def nvmlDeviceGetMigMode(self, handle):
        return (1, 1)


def test_enrich_matches_by_bus_id_and_records_failures():
    gpu = {
        "pci_address": "0000:18:00.0",
        "vendor_id": "0x10de",
        "uuid": None,
        "serial": None,
        "memory_bytes": None,
        "mig_mode": None,
    }
    root = Root("/")

    info = nvml.enrich([gpu], root, nvml=_StandInNvml())

    assert info == {"driver_version": "550.90.07", "cuda_driver_version": "12.4"}
    assert gpu["uuid"] == "GPU-3f0c2a1e-7b4d-4c6e-9a8b-1d2e3f405000"
    assert gpu["memory_bytes"] == 85520809984
    assert gpu["mig_mode"] == "enabled"
    assert gpu["serial"] is None
    assert [e.error for e in root.errors] == [
        "nvmlDeviceGetSerial(0000:18:00.0) failed: Not Supported",
        "GPU 1 at bus id '0000:99:00.0' has no matching PCI function",
    ]


def test_enrich_records_a_failed_init():
    class Broken(_StandInNvml):
        def nvmlInit(self):
            raise _NvmlError("Driver Not Loaded")

    root = Root("/")
    assert nvml.enrich([], root, nvml=Broken()) is None
    assert [(e.path, e.error) for e in root.errors] == [("nvml", "nvmlInit failed: Driver Not Loaded")]
