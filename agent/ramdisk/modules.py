"""The kernel modules the deploy ramdisk keeps: a named list and its closure from the kernel's own files.

The closure follows ``modules.dep`` (what ``modprobe`` loads first) and ``modules.softdep`` (``pre:``
and ``post:`` modules that ``modprobe`` loads too), as ``modprobe -D`` would, so nothing is guessed.
Every other module file is removed and ``depmod`` rebuilds the indexes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# Disk controllers and NICs of GPU servers, and the virtual hardware of the lab's VMs.
WANTED = (
    # virtio (the lab's VMs and cloud machines)
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "virtio_scsi",
    # storage: NVMe, SATA AHCI, SAS HBAs and RAID, and the SCSI disk driver behind the last three
    "nvme",
    "ahci",
    "mpt3sas",
    "megaraid_sas",
    "sd_mod",
    # NICs: NVIDIA/Mellanox ConnectX, Intel E810/X710/X5xx/I350/I21x, Broadcom NetXtreme-E
    "mlx5_core",
    "ice",
    "i40e",
    "ixgbe",
    "bnxt_en",
    "igb",
    "e1000e",
)

_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


class ModuleError(RuntimeError):
    """A wanted module is neither a file nor built into the kernel."""


def module_name(path: str) -> str:
    """The name modprobe knows a module file by: its base name without .ko*, dashes as underscores."""
    base = os.path.basename(path)
    for suffix in _SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def read_deps(moddir: Path) -> dict[str, tuple[str, list[str]]]:
    """``modules.dep`` as {name: (relative path, [dependency paths])}."""
    deps: dict[str, tuple[str, list[str]]] = {}
    with open(moddir / "modules.dep", encoding="utf-8") as stream:
        for line in stream:
            path, sep, rest = line.partition(":")
            if sep:
                deps[module_name(path)] = (path.strip(), rest.split())
    return deps


def read_softdeps(moddir: Path) -> dict[str, list[str]]:
    """``modules.softdep`` as {name: [pre and post module names]}."""
    soft: dict[str, list[str]] = {}
    path = moddir / "modules.softdep"
    if not path.exists():
        return soft
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            words = line.split()
            if len(words) < 3 or words[0] != "softdep":
                continue
            names = [w.replace("-", "_") for w in words[2:] if w not in ("pre:", "post:")]
            soft.setdefault(words[1].replace("-", "_"), []).extend(names)
    return soft


def read_builtin(moddir: Path) -> set[str]:
    """The names of the modules built into the kernel image (``modules.builtin``)."""
    path = moddir / "modules.builtin"
    if not path.exists():
        return set()
    with open(path, encoding="utf-8") as stream:
        return {module_name(line.strip()) for line in stream if line.strip()}


def read_aliases(moddir: Path) -> dict[str, list[str]]:
    """Plain aliases of ``modules.alias`` (no wildcards) as {alias: [module names]} (softdeps name some)."""
    aliases: dict[str, list[str]] = {}
    path = moddir / "modules.alias"
    if not path.exists():
        return aliases
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            words = line.split()
            if len(words) == 3 and words[0] == "alias" and not any(c in words[1] for c in "*?["):
                aliases.setdefault(words[1].replace("-", "_"), []).append(words[2].replace("-", "_"))
    return aliases


def closure(moddir: Path, wanted: tuple[str, ...] = WANTED) -> set[str]:
    """Relative paths of the module files ``wanted`` needs, dependencies and soft dependencies included."""
    deps, soft, builtin = read_deps(moddir), read_softdeps(moddir), read_builtin(moddir)
    aliases = read_aliases(moddir)
    missing = [name for name in wanted if name not in deps and name not in builtin]
    if missing:
        raise ModuleError(
            f"kernel modules {', '.join(missing)} are neither in {moddir}/modules.dep nor built in; "
            "check the kernel package (linux-image-amd64 has them all) or the module list in "
            "agent/ramdisk/modules.py"
        )
    keep: set[str] = set()
    todo = list(wanted)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in deps:
            todo.extend(aliases.get(name, ()))  # a soft dependency may name an alias; built in: nothing
            continue
        path, hard = deps[name]
        keep.add(path)
        keep.update(hard)
        todo.extend(module_name(p) for p in hard)
        todo.extend(soft.get(name, ()))
    return keep


def prune(root: Path, kernel_version: str, wanted: tuple[str, ...] = WANTED) -> list[str]:
    """Delete every module file under ``root`` that ``wanted`` does not need, run depmod; return the kept."""
    moddir = root / "usr" / "lib" / "modules" / kernel_version
    keep = closure(moddir, wanted)
    for dirpath, _dirs, files in os.walk(moddir / "kernel"):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), moddir)
            if rel not in keep:
                os.unlink(os.path.join(dirpath, name))
    for dirpath, dirs, files in os.walk(moddir / "kernel", topdown=False):
        if not dirs and not files:
            os.rmdir(dirpath)
        elif not os.listdir(dirpath):
            os.rmdir(dirpath)
    subprocess.run(["depmod", "-b", str(root), kernel_version], check=True, capture_output=True)
    return sorted(keep)
