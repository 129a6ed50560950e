"""The lab's VMs: libvirt domains (TCG) from templates/domain.xml.j2 with qcow2 disks in the lab directory."""

from __future__ import annotations

import subprocess
import uuid as uuidlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import jinja2

from agent.lab.state import State

URI = "qemu:///system"
PREFIX = "kiln-lab-"
TEMPLATES = Path(__file__).resolve().parent / "templates"
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"  # Debian's ovmf: no Secure Boot in this build
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"


@dataclass
class VM:
    """One lab VM as defined."""

    name: str
    uuid: str
    mac: str
    lower: str
    console: str
    firmware: str = "bios"
    vcpus: int = 2
    memory_mib: int = 2048
    disks: list[dict] = field(default_factory=list)
    nics: list[dict] = field(default_factory=list)  # {"mac", "lower"} of every NIC, the first one too
    console_socket: str = ""  # the serial console as a unix socket (agent.lab.console); "" for none
    offloads: bool = True  # False: the guest computes its checksums (behind OVS's userspace datapath)


def connect():
    """A libvirt connection to qemu:///system; RuntimeError telling how to start libvirtd."""
    try:
        import libvirt
    except ImportError:
        raise RuntimeError(
            "libvirt-python is not installed: apt-get install -y libvirt-dev pkg-config gcc, "
            "then pip install libvirt-python"
        ) from None
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors come as exceptions
    try:
        return libvirt.open(URI)
    except libvirt.libvirtError as exc:
        raise RuntimeError(
            f"cannot connect to libvirt at {URI} ({exc}): libvirtd is not running? Start it with "
            "'virtlogd -d && libvirtd -d' (or systemctl start libvirtd)"
        ) from None


def mac_of(index: int, nic: int = 0) -> str:
    """The MAC of VM ``index``'s NIC ``nic``."""
    return f"52:54:00:99:{nic:02x}:{index + 1:02x}"


def render(vm: VM) -> str:
    """The domain XML of ``vm``."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True)
    nvme = [d for d in vm.disks if d["bus"] == "nvme"]
    return env.get_template("domain.xml.j2").render(
        **asdict(vm), nvme_disks=nvme, ovmf_code=OVMF_CODE, ovmf_vars=OVMF_VARS
    )


def _disks(directory: Path, name: str, buses: list[str], size_gib: int) -> list[dict]:
    disks = []
    for n, bus in enumerate(buses):
        path = directory / f"{name}-disk{n}.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(path), f"{size_gib}G"],
            check=True,
            capture_output=True,
        )
        dev = "vd" + "abcdefgh"[sum(1 for d in disks if d["bus"] == "virtio")]
        disks.append(
            {
                "path": str(path),
                "bus": bus,
                "dev": dev,
                "id": f"nvme{n}",
                "addr": f"0x{0x10 + n:x}",  # a PCIe slot of its own: libvirt gives its root ports 1 onwards
                "serial": f"kiln-{name[-4:]}-{n}",
            }
        )
    return disks


def define(
    conn,
    state: State,
    index: int,
    lower: str | list[str],
    firmware: str,
    buses: list[str],
    size_gib: int = 10,
    offloads: bool = True,
) -> VM:
    """Create VM ``index``'s disks and define its domain (not started: the BMC powers it on).

    ``lower``: the host link of each NIC (one or a list); the serial console is a unix socket
    beside a log of everything it printed.
    """
    lowers = [lower] if isinstance(lower, str) else list(lower)
    name = f"{PREFIX}vm{index}"
    directory = state.directory / "vms"
    directory.mkdir(parents=True, exist_ok=True)
    state.add("domains", name)
    vm = VM(
        name=name,
        uuid=str(uuidlib.uuid4()),
        mac=mac_of(index),
        lower=lowers[0],
        console=str(directory / f"{name}.console.log"),
        firmware=firmware,
        disks=_disks(directory, name, buses, size_gib),
        nics=[{"mac": mac_of(index, n), "lower": dev} for n, dev in enumerate(lowers)],
        console_socket=str(directory / f"{name}.console.sock"),
        offloads=offloads,
    )
    conn.defineXML(render(vm))
    return vm


def destroy(conn, names: list[str]) -> list[str]:
    """Stop and undefine the named domains (their UEFI variables too); return those that existed."""
    import libvirt

    removed = []
    for name in names:
        try:
            dom = conn.lookupByName(name)
        except libvirt.libvirtError:
            continue
        if dom.isActive():
            dom.destroy()
        flags = libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
        dom.undefineFlags(flags)
        removed.append(f"domain {name}")
    return removed


def lab_domains(conn) -> list[str]:
    """The names of the lab's domains that libvirt knows (none after down)."""
    return sorted(d.name() for d in conn.listAllDomains() if d.name().startswith(PREFIX))


MEDIA_POOL = f"{PREFIX}media"
"""The libvirt storage pool where sushy-tools puts the virtual media it inserts (a directory pool)."""


def create_media_pool(conn, state: State) -> str:
    """Define, build and start the lab's media pool in <lab>/media; return its name."""
    path = state.directory / "media"
    path.mkdir(parents=True, exist_ok=True)
    state.add("pools", MEDIA_POOL)
    xml = (
        f"<pool type='dir'><name>{MEDIA_POOL}</name>"
        f"<target><path>{xml_escape(str(path))}</path></target></pool>"
    )
    pool = conn.storagePoolDefineXML(xml, 0)
    pool.create(0)
    return MEDIA_POOL


def destroy_media_pool(conn) -> list[str]:
    """Stop and undefine the lab's media pool (its volumes, files in the lab directory, go with it)."""
    import libvirt

    try:
        pool = conn.storagePoolLookupByName(MEDIA_POOL)
    except libvirt.libvirtError:
        return []
    if pool.isActive():
        for volume in pool.listAllVolumes():
            volume.delete(0)
        pool.destroy()
    pool.undefine()
    return [f"storage pool {MEDIA_POOL}"]


def media_pool_exists(conn) -> bool:
    """Whether libvirt still knows the lab's media pool."""
    return MEDIA_POOL in conn.listStoragePools() + conn.listDefinedStoragePools()
