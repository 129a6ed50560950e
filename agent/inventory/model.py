"""The shape of Kiln's own inventory (the ``json`` format), as TypedDicts.

Every collector returns these records; ``None`` means "not known on this
host" (missing, unreadable or garbled: the reason is in ``errors``).
Sizes are bytes unless the key says otherwise, speeds are Mbit/s,
PCI ids are lower-case hex strings with a ``0x`` prefix ("0x10de"),
PCI addresses are full domain:bus:dev.fn ("0000:18:00.0").
"""

from __future__ import annotations

from typing import TypedDict


class Firmware(TypedDict):
    vendor: str | None
    version: str | None
    date: str | None


class System(TypedDict):
    vendor: str | None  # /sys/class/dmi/id/sys_vendor
    product: str | None  # product_name
    version: str | None  # product_version
    serial: str | None  # product_serial
    uuid: str | None  # product_uuid, lower case
    sku: str | None  # product_sku
    family: str | None  # product_family
    board_vendor: str | None
    board_product: str | None
    chassis_type: int | None
    firmware: Firmware
    boot_mode: str | None  # "uefi" or "bios"
    secure_boot: bool | None
    pxe_interface: str | None  # MAC from BOOTIF= on /proc/cmdline, "aa:bb:..."
    hostname: str | None
    kernel_cmdline: str | None
    bmc_address: str | None  # never found from sysfs; kept for Ironic's shape
    bmc_v6address: str | None


class NumaNode(TypedDict):
    node: int
    cpus: list[int]  # from nodeN/cpulist
    cpulist: str | None
    memory_bytes: int | None  # MemTotal from nodeN/meminfo
    distances: list[int] | None  # nodeN/distance


class Cpu(TypedDict):
    model_name: str | None
    architecture: str | None  # uname machine: x86_64, aarch64
    vendor: str | None
    count: int | None  # logical CPUs online
    sockets: int | None
    cores: int | None  # physical cores, all sockets
    threads_per_core: int | None
    frequency_mhz: float | None  # cpuinfo_max_freq when present, else /proc/cpuinfo
    flags: list[str]
    numa_nodes: list[NumaNode]


class Dimm(TypedDict):
    locator: str | None
    size_mb: int | None
    type: str | None
    speed_mts: int | None
    manufacturer: str | None
    serial: str | None
    part_number: str | None


class Memory(TypedDict):
    total_bytes: int | None  # MemTotal
    physical_mb: int | None  # sum of SMBIOS type 17 devices
    dimms: list[Dimm]


class Disk(TypedDict):
    name: str  # "/dev/nvme0n1"
    kernel_name: str  # "nvme0n1"
    model: str | None
    vendor: str | None
    serial: str | None
    wwn: str | None
    wwn_with_extension: str | None
    wwn_vendor_extension: str | None
    size: int | None  # bytes
    rotational: bool | None
    hctl: str | None
    by_path: str | None  # "/dev/disk/by-path/..."
    logical_sector_size: int | None
    physical_sector_size: int | None
    transport: str | None  # nvme, sata, sas, scsi, virtio, usb, mmc
    removable: bool | None
    pci_address: str | None
    numa_node: int | None
    nvme: dict | None  # {"model", "serial", "firmware", "controller": "nvme0"}


class Nic(TypedDict):
    name: str
    mac_address: str | None  # permanent MAC when known, else the current one
    current_mac_address: str | None
    ipv4_addresses: list[str]
    ipv6_addresses: list[str]
    carrier: bool | None
    operstate: str | None
    speed_mbps: int | None  # negotiated; None when unknown
    mtu: int | None
    driver: str | None
    pci_address: str | None  # the PCI function, also for virtio
    vendor_id: str | None
    device_id: str | None
    numa_node: int | None
    sriov_totalvfs: int | None
    sriov_numvfs: int | None
    infiniband_guid: str | None
    link_type: str | None  # "ethernet", "infiniband"
    is_virtual_function: bool


class PcieLink(TypedDict):
    current_speed: str | None  # "32.0 GT/s PCIe"
    current_width: int | None
    max_speed: str | None
    max_width: int | None
    degraded: bool | None


class XidEvent(TypedDict):
    xid: int  # NVIDIA's Xid number (79 = fallen off the bus, 48 = double-bit ECC, 13 = graphics exception)
    message: str  # the rest of the kernel's "NVRM: Xid (PCI:...): N, ..." line
    seconds: float  # kernel timestamp: seconds since boot (monotonic; see KernelLog.boot_time)


class NvLink(TypedDict):
    link: int
    active: bool | None
    version: str | None  # "4.0"
    speed_mb_s: int | None  # NVML_FI_DEV_NVLINK_GET_SPEED: megabytes per second
    remote_pci_address: str | None
    remote_type: str | None  # "gpu", "switch", "ibmnpu"


class XgmiLink(TypedDict):
    peer: str | None  # the peer GPU's PCI address (None when its KFD node names no PCI function)
    kfd_node: int
    weight: int | None
    min_bandwidth_mb_s: int | None
    max_bandwidth_mb_s: int | None


class GpuHealth(TypedDict):
    """Health of one GPU. NVML fields are null when NVML was not asked (captured tree, no driver)."""

    nvml: bool  # whether NVML answered for this GPU
    not_supported: list[str]  # fields the GPU or driver does not have (null without an entry in errors)
    persistence_mode: bool | None
    ecc: dict | None  # {mode_current, mode_pending, volatile: {correctable, uncorrectable}, aggregate: {...}}
    retired_pages: dict | None  # {single_bit, double_bit, pending}
    remapped_rows: dict | None  # {correctable, uncorrectable, pending, failure}
    power: dict | None  # {limit_w, enforced_limit_w, default_limit_w}
    thermal: dict | None  # {shutdown_c, slowdown_c, gpu_max_c, memory_max_c}
    throttle_reasons: list[str] | None  # clock event reasons now active ("gpu_idle", "hw_slowdown", ...)
    nvlinks: list[NvLink] | None
    xid_errors: list[XidEvent] | None  # NVIDIA: this boot's Xids for the GPU (latest 64); null elsewhere
    ras: dict | None  # AMD: {block: {"ue": n, "ce": n}} from <device>/ras/<block>_err_count
    xgmi_links: list[XgmiLink] | None  # AMD: GPU-to-GPU links of the KFD topology (type 11)


class _GpuFields(TypedDict):
    pci_address: str
    vendor_id: str
    device_id: str
    subsystem_vendor_id: str | None
    subsystem_device_id: str | None
    class_code: str | None  # "0x030200"
    vendor: str | None  # "NVIDIA"
    name: str | None  # "H100 SXM5 80GB"
    sku: dict | None  # catalogue facts: memory_gb, architecture, form_factor, interconnect, mig
    memory_bytes: int | None  # from sysfs or NVML
    numa_node: int | None
    local_cpulist: str | None
    driver: str | None
    pcie: PcieLink
    sriov_totalvfs: int | None
    sriov_numvfs: int | None
    iommu_group: int | None
    vbios_version: str | None
    uuid: str | None
    serial: str | None
    mig_mode: str | None
    partition: dict | None  # AMD compute/memory partition
    pcie_switch: str | None  # the upstream switch port's address


class Gpu(_GpuFields, total=False):
    """A GPU. ``health`` is always written by collect(); an older agent's inventory has none."""

    health: GpuHealth


class PciDevice(TypedDict):
    address: str
    vendor_id: str
    device_id: str
    class_code: str | None
    revision: str | None
    driver: str | None
    numa_node: int | None


class Errors(TypedDict):
    path: str
    error: str


class KernelLog(TypedDict):
    """Where the Xids came from, and the boot they belong to."""

    source: str | None  # "/dev/kmsg" (live: the kernel's ring buffer; captured tree: a copy of it)
    boot_id: str | None  # /proc/sys/kernel/random/boot_id: changes at every boot
    boot_time: int | None  # /proc/stat btime: the boot, in seconds since the epoch
    records: int | None  # kernel log records read
    complete: bool | None  # the first record is the boot's first (sequence 0): nothing was overwritten
    xid_count: int | None  # every Xid line read, all GPUs
    unmatched_xids: list[dict] | None  # Xids naming a PCI address with no GPU (a GPU that fell off the bus)


class _InventoryFields(TypedDict):
    system: System
    cpu: Cpu
    memory: Memory
    disks: list[Disk]
    nics: list[Nic]
    gpus: list[Gpu]
    nvswitches: list[PciDevice]
    pci_devices: list[PciDevice]
    numa_topology: dict  # ironic-python-agent's collector shape, plus "gpus"
    lldp: dict
    errors: list[Errors]


class Inventory(_InventoryFields, total=False):
    """The whole inventory. ``kernel_log`` is there when NVIDIA GPUs are (their Xids come from it)."""

    kernel_log: KernelLog
