"""PCI functions from /sys/bus/pci/devices: ids, driver, NUMA, PCIe link and switch position.

Each device directory is read once per :class:`Root`; :func:`pci_function` hands the
cached :class:`PciFunction` to the other readers (gpus, nics, disks).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from agent.inventory.base import Root
from agent.inventory.model import PciDevice, PcieLink

PCI_DEVICES = "/sys/bus/pci/devices"
BDF_RE = re.compile(r"^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")

# PCI Express Capabilities register, Device/Port Type field (PCIe base spec, 7.5.3.2).
PORT_ROOT = 0x4
PORT_SWITCH_UPSTREAM = 0x5
PORT_SWITCH_DOWNSTREAM = 0x6

_CACHE_KEY = "pci_functions"


@dataclass
class PciFunction:
    """One PCI function's sysfs attributes, read once."""

    root: Root = field(repr=False, compare=False)
    address: str
    path: str  # host path of the real device directory
    vendor_id: int | None = None
    device_id: int | None = None
    class_code: int | None = None
    revision: int | None = None
    driver: str | None = None
    numa_node: int | None = None
    _attrs: dict = field(default_factory=dict, repr=False, compare=False)

    def attr(self, name: str) -> str | None:
        """Read (once) an optional text attribute of the device directory."""
        if name not in self._attrs:
            self._attrs[name] = self.root.read(f"{self.path}/{name}", optional=True)
        return self._attrs[name]

    def attr_int(self, name: str, base: int = 10) -> int | None:
        """Read (once) an optional integer attribute; garbled values are recorded."""
        key = f"{name}#int{base}"
        if key not in self._attrs:
            text = self.attr(name)
            value = None
            if text is not None:
                try:
                    value = int(text.split()[0], base)
                except (ValueError, IndexError):
                    self.root.note(f"{self.path}/{name}", f"garbled: expected an integer, got {text[:40]!r}")
            self._attrs[key] = value
        return self._attrs[key]

    def link_name(self, name: str) -> str | None:
        """Return the basename a symlink in the device directory points to."""
        key = f"{name}#link"
        if key not in self._attrs:
            self._attrs[key] = self.root.readlink_name(f"{self.path}/{name}")
        return self._attrs[key]

    @property
    def subsystem_vendor_id(self) -> int | None:
        """The board vendor's id (read on first use: only GPUs need it)."""
        return self.attr_int("subsystem_vendor", 16)

    @property
    def subsystem_device_id(self) -> int | None:
        """The board's subsystem device id."""
        return self.attr_int("subsystem_device", 16)

    @property
    def local_cpulist(self) -> str | None:
        """The CPUs close to the device ('0-31,64-95')."""
        return self.attr("local_cpulist")

    @property
    def iommu_group(self) -> int | None:
        """The IOMMU group number, from the iommu_group link's name."""
        name = self.link_name("iommu_group")
        return int(name) if name and name.isdigit() else None

    @property
    def sriov_totalvfs(self) -> int | None:
        """How many virtual functions the device can create (None without SR-IOV)."""
        return self.attr_int("sriov_totalvfs")

    @property
    def sriov_numvfs(self) -> int | None:
        """How many virtual functions are enabled now."""
        return self.attr_int("sriov_numvfs")

    def hex_id(self, value: int | None, width: int) -> str | None:
        """Format an id the model's way: '0x10de'."""
        return None if value is None else f"0x{value:0{width}x}"


def _cache(root: Root) -> dict[str, PciFunction | None]:
    return root.cache.setdefault(_CACHE_KEY, {})


def pci_addresses(root: Root) -> list[str]:
    """List the PCI addresses under /sys/bus/pci/devices, sorted."""
    cache = _cache(root)
    if "#list" not in cache:
        names = root.listdir(PCI_DEVICES)
        good = []
        for name in names:
            if BDF_RE.match(name):
                good.append(name)
            else:
                root.note(f"{PCI_DEVICES}/{name}", "not a PCI address (domain:bus:device.function)")
        cache["#list"] = sorted(good)  # type: ignore[assignment]
    return cache["#list"]  # type: ignore[return-value]


def pci_function(root: Root, bdf: str) -> PciFunction | None:
    """Return the (cached) attributes of one PCI function, or None when its directory is unusable."""
    cache = _cache(root)
    if bdf in cache:
        return cache[bdf]
    func = _read_function(root, bdf)
    cache[bdf] = func
    return func


def _resolve(root: Root, rel: str) -> str | None:
    """Resolve a /sys/bus/pci/devices link with one readlink; the slow, careful way when that fails."""
    try:
        target = os.readlink(root.host(rel))
    except OSError:
        target = None
    if target is not None:
        real = os.path.normpath(os.path.join(os.path.dirname(rel), target))
        if real.startswith("/sys/devices/") and os.path.isdir(root.host(real)):
            return real
    before = len(root.errors)
    real = root.realpath(rel)  # records ELOOP and links out of the root
    if real is None and len(root.errors) == before:
        root.note(rel, "dangling link: the device vanished or the tree is incomplete")
    return real


def _read_function(root: Root, bdf: str) -> PciFunction | None:
    real = _resolve(root, f"{PCI_DEVICES}/{bdf}")
    if real is None:
        return None
    func = PciFunction(root=root, address=bdf, path=real)
    func.vendor_id = root.read_hex(f"{real}/vendor")
    func.device_id = root.read_hex(f"{real}/device")
    func.class_code = root.read_hex(f"{real}/class")
    func.revision = root.read_hex(f"{real}/revision", optional=True)
    func.driver = root.readlink_name(f"{real}/driver")
    node = root.read_int(f"{real}/numa_node", optional=True)
    func.numa_node = node if node is not None and node >= 0 else None
    return func


def read_pci_devices(root: Root) -> list[PciDevice]:
    """Return every PCI function under /sys/bus/pci/devices, sorted by address."""
    devices: list[PciDevice] = []
    for bdf in pci_addresses(root):
        func = pci_function(root, bdf)
        if func is None or func.vendor_id is None or func.device_id is None:
            continue  # the reason is in root.errors
        devices.append(
            PciDevice(
                address=bdf,
                vendor_id=f"0x{func.vendor_id:04x}",
                device_id=f"0x{func.device_id:04x}",
                class_code=func.hex_id(func.class_code, 6),
                revision=func.hex_id(func.revision, 2),
                driver=func.driver,
                numa_node=func.numa_node,
            )
        )
    return devices


def functions_by_class(root: Root, *prefixes: int) -> list[PciFunction]:
    """Return the PCI functions whose class code starts with one of the 16-bit prefixes (0x0302)."""
    found = []
    for bdf in pci_addresses(root):
        func = pci_function(root, bdf)
        if func is not None and func.class_code is not None and (func.class_code >> 8) in prefixes:
            found.append(func)
    return found


# -- PCIe link -----------------------------------------------------------


def parse_link_speed(text: str | None) -> float | None:
    """Turn '32.0 GT/s PCIe' (or '8 GT/s') into 32.0; 'Unknown' and garbage into None."""
    if not text:
        return None
    try:
        value = float(text.split()[0])
    except (ValueError, IndexError):
        return None
    return value if value > 0 else None


def pcie_link(root: Root, bdf: str) -> PcieLink:
    """Return a function's current and maximum PCIe link, and whether it runs below its maximum."""
    func = pci_function(root, bdf)
    if func is None:
        return PcieLink(current_speed=None, current_width=None, max_speed=None, max_width=None, degraded=None)
    cur_speed, max_speed = func.attr("current_link_speed"), func.attr("max_link_speed")
    cur_width, max_width = func.attr_int("current_link_width"), func.attr_int("max_link_width")
    cur_s, max_s = parse_link_speed(cur_speed), parse_link_speed(max_speed)
    lower = []
    if cur_s is not None and max_s is not None:
        lower.append(cur_s < max_s)
    if cur_width is not None and max_width is not None:
        lower.append(cur_width < max_width)
    degraded = True if any(lower) else (False if len(lower) == 2 else None)
    return PcieLink(
        current_speed=cur_speed if cur_s is not None else None,
        current_width=cur_width,
        max_speed=max_speed if max_s is not None else None,
        max_width=max_width,
        degraded=degraded,
    )


# -- PCIe switch position --------------------------------------------------


def ancestors(root: Root, bdf: str) -> list[str]:
    """Return the PCI addresses above a function in the device tree, top-most (root port) first."""
    func = pci_function(root, bdf)
    if func is None:
        return []
    parts = [p for p in func.path.split("/") if BDF_RE.match(p)]
    return parts[:-1]


def port_type(root: Root, bdf: str) -> int | None:
    """Read a function's PCIe Device/Port Type from its config space; None when unreadable."""
    func = pci_function(root, bdf)
    if func is None:
        return None
    key = "#port_type"
    if key in func._attrs:
        return func._attrs[key]
    func._attrs[key] = ptype = _config_port_type(
        root.read_bytes(f"{func.path}/config", optional=True, limit=4096)
    )
    return ptype


def _config_port_type(cfg: bytes | None) -> int | None:
    """Walk the capability list of a config-space dump to the PCI Express capability (id 0x10)."""
    if not cfg or len(cfg) < 0x40 or not cfg[0x06] & 0x10:
        return None
    ptr, seen = cfg[0x34] & 0xFC, set()
    while ptr and ptr + 4 <= len(cfg) and ptr not in seen:
        seen.add(ptr)
        if cfg[ptr] == 0x10:
            return (int.from_bytes(cfg[ptr + 2 : ptr + 4], "little") >> 4) & 0xF
        ptr = cfg[ptr + 1] & 0xFC
    return None


def _is_bridge(root: Root, bdf: str) -> bool:
    func = pci_function(root, bdf)
    return func is not None and func.class_code is not None and (func.class_code >> 8) == 0x0604


def switch_ports(root: Root, bdf: str) -> tuple[str | None, str | None]:
    """Return (upstream port of the nearest switch, top-most switch upstream port) above a function.

    A switch is named by its upstream port: the GPU, NIC and NVMe behind different
    downstream ports of one switch share it. The port type comes from config space when
    readable; otherwise (captured trees, unprivileged 64-byte reads) from the chain: below
    a root port, switch ports alternate upstream, downstream, upstream, ...
    """
    chain = ancestors(root, bdf)
    kinds: list[int | None] = []
    for index, addr in enumerate(chain):
        ptype = port_type(root, addr)
        if ptype is None and _is_bridge(root, addr):
            ptype = (
                PORT_ROOT if index == 0 else (PORT_SWITCH_UPSTREAM if index % 2 else PORT_SWITCH_DOWNSTREAM)
            )
        kinds.append(ptype)
    upstream = [i for i, k in enumerate(kinds) if k == PORT_SWITCH_UPSTREAM]
    if not upstream:
        return None, None
    downstream = [i for i, k in enumerate(kinds) if k == PORT_SWITCH_DOWNSTREAM]
    nearest = upstream[-1]
    if downstream:
        # the switch directly above the function: the last upstream port before its last downstream port
        above = [i for i in upstream if i < downstream[-1]]
        nearest = above[-1] if above else nearest
    return chain[nearest], chain[upstream[0]]
