"""GPUs, accelerators and NVSwitches, from sysfs (and NVML when it is there).

A GPU is a PCI function of class 0x0300xx, 0x0302xx, 0x0380xx or 0x1200xx of any
vendor, except the display controllers the catalogue marks as BMC or virtual displays,
and except SR-IOV virtual functions (their physical function is the GPU).
"""

from __future__ import annotations

from agent.inventory import amd_health, catalogue, kmsg
from agent.inventory.base import Root
from agent.inventory.gpu_health import empty_health
from agent.inventory.model import Gpu, PciDevice
from agent.inventory.pci import (
    PciFunction,
    functions_by_class,
    pci_addresses,
    pci_function,
    pcie_link,
    read_pci_devices,
    switch_ports,
)

GPU_CLASSES = (0x0300, 0x0302, 0x0380, 0x1200)
NVSWITCH_CLASS = 0x0680

VENDOR_NVIDIA = 0x10DE
VENDOR_AMD = 0x1002
VENDOR_INTEL = 0x8086


def is_gpu(func: PciFunction) -> bool:
    """Say whether a PCI function is a GPU or accelerator (not a BMC or virtual display, not a VF)."""
    if func.class_code is None or (func.class_code >> 8) not in GPU_CLASSES:
        return False
    if catalogue.kind(func.vendor_id, func.device_id) in catalogue.NOT_GPU_KINDS:
        return False
    return not func.root.exists(f"{func.path}/physfn")


def read_gpus(root: Root, use_nvml: bool = True) -> list[Gpu]:
    """Return every GPU and accelerator with its health, sorted by PCI address."""
    gpus = [_gpu(root, func) for func in functions_by_class(root, *GPU_CLASSES) if is_gpu(func)]
    if any(g["vendor_id"] == "0x10de" for g in gpus):
        if use_nvml:
            from agent.inventory import nvml

            nvml.enrich(gpus, root)
        root.cache["kernel_log"] = kmsg.attach_xids(root, gpus)
    return gpus


def _gpu(root: Root, func: PciFunction) -> Gpu:
    vendor_id, device_id = func.vendor_id or 0, func.device_id or 0
    entry = catalogue.describe(root, vendor_id, device_id, func.subsystem_vendor_id, func.subsystem_device_id)
    sku = dict(entry.sku, verified=entry.verified) if entry.sku else None
    nearest_switch, _ = switch_ports(root, func.address)
    gpu = Gpu(
        pci_address=func.address,
        vendor_id=f"0x{vendor_id:04x}",
        device_id=f"0x{device_id:04x}",
        subsystem_vendor_id=func.hex_id(func.subsystem_vendor_id, 4),
        subsystem_device_id=func.hex_id(func.subsystem_device_id, 4),
        class_code=func.hex_id(func.class_code, 6),
        vendor=entry.vendor,
        name=entry.name,
        sku=sku,
        memory_bytes=None,
        numa_node=func.numa_node,
        local_cpulist=func.local_cpulist,
        driver=func.driver,
        pcie=pcie_link(root, func.address),
        sriov_totalvfs=func.sriov_totalvfs,
        sriov_numvfs=func.sriov_numvfs,
        iommu_group=func.iommu_group,
        vbios_version=None,
        uuid=None,
        serial=None,
        mig_mode=None,
        partition=None,
        pcie_switch=nearest_switch,
        health=empty_health(),
    )
    if vendor_id == VENDOR_NVIDIA:
        _nvidia_proc(root, gpu)
    elif vendor_id == VENDOR_AMD:
        _amdgpu(func, gpu)
        amd_health.fill_health(root, func.path, func.address, gpu["health"])
    elif vendor_id == VENDOR_INTEL:
        gpu["memory_bytes"] = _xe_vram(root, func)
    return gpu


def _nvidia_proc(root: Root, gpu: Gpu) -> None:
    """Fill UUID and VBIOS from /proc/driver/nvidia/gpus/<bdf>/information (driver loaded)."""
    text = root.read(f"/proc/driver/nvidia/gpus/{gpu['pci_address']}/information", optional=True)
    if not text:
        return
    fields = parse_nvidia_information(text)
    gpu["uuid"] = fields.get("GPU UUID") or None
    gpu["vbios_version"] = fields.get("Video BIOS") or None


def parse_nvidia_information(text: str) -> dict[str, str]:
    """Parse the 'Key:  value' lines of the NVIDIA driver's per-GPU information file."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _amdgpu(func: PciFunction, gpu: Gpu) -> None:
    """Fill memory, VBIOS, ids and partition from the amdgpu attributes in the device directory."""
    gpu["memory_bytes"] = func.attr_int("mem_info_vram_total")
    gpu["vbios_version"] = func.attr("vbios_version") or None
    gpu["uuid"] = func.attr("unique_id") or None
    gpu["serial"] = func.attr("serial_number") or None
    partition = {
        "compute": func.attr("current_compute_partition"),
        "available_compute": _split(func.attr("available_compute_partition")),
        "memory": func.attr("current_memory_partition"),
        "available_memory": _split(func.attr("available_memory_partition")),
    }
    if any(v is not None for v in partition.values()):
        gpu["partition"] = partition


def _split(text: str | None) -> list[str] | None:
    """Split 'SPX, DPX, QPX, CPX' into ['SPX', 'DPX', 'QPX', 'CPX']."""
    if text is None:
        return None
    return [p.strip() for p in text.replace(",", " ").split() if p.strip()]


def _xe_vram(root: Root, func: PciFunction) -> int | None:
    """Sum tileN/physical_vram_size_bytes (or tileN/memory/...) of an Intel xe device."""
    total, found = 0, False
    for name in root.listdir(func.path, optional=True):
        if not name.startswith("tile") or not name[4:].isdigit():
            continue
        for rel in (
            f"{func.path}/{name}/physical_vram_size_bytes",
            f"{func.path}/{name}/memory/physical_vram_size_bytes",
        ):
            if root.exists(rel):
                value = root.read_int(rel, 0)
                if value is not None:
                    total, found = total + value, True
                break
    return total if found else None


def read_nvswitches(root: Root) -> list[PciDevice]:
    """Return the NVIDIA NVSwitch functions (bound to a driver or not), sorted by address."""
    wanted = set()
    for bdf in pci_addresses(root):
        func = pci_function(root, bdf)
        if func is None or func.vendor_id != VENDOR_NVIDIA:
            continue
        if catalogue.kind(func.vendor_id, func.device_id) != "nvswitch":
            continue
        if func.class_code is None or (func.class_code >> 8) == NVSWITCH_CLASS:
            wanted.add(bdf)
    return [dev for dev in read_pci_devices(root) if dev["address"] in wanted]
