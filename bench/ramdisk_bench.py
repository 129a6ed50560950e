"""The deploy ramdisk's size and one lab VM's boot phases against their targets.

Run as root: ``python -m bench.ramdisk_bench`` (brings a 1-VM lab up, inspects the VM, takes it down).
Targets (issue 10): initramfs <= 200 MiB compressed; kernel start to first lookup <= 30 s under TCG.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

MIB = 1024 * 1024
SIZE_TARGET_MIB = 200
BOOT_TARGET_S = 30.0


def main(argv: list[str] | None = None) -> int:
    """Build (cached), print the size; bring up a lab, time one VM's boot into a lookup; take it down."""
    from agent.lab import lab, nodes, timeline, vms
    from agent.ramdisk import builder

    p = argparse.ArgumentParser(prog="python -m bench.ramdisk_bench")
    p.add_argument("--firmware", choices=("bios", "uefi"), default="bios")
    p.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        built = builder.build(Path(tmp))
        size = built.initramfs_bytes / MIB
    how = "cached" if built.cached else "built"
    print(
        f"ramdisk ({how} in {built.seconds:.1f} s): initramfs {size:.1f} MiB zstd, "
        f"target <= {SIZE_TARGET_MIB} MiB"
    )

    state = lab.up(1, args.firmware)
    try:
        node = state.info["nodes"][0]
        enrolled = nodes.enroll(state, node)
        nodes.inspect(state, enrolled.id)
        power_on = timeline.wait_power_on(vms.connect(), node["name"])
        nodes.wait_state(state, enrolled.id, "manageable", 300)
        found = timeline.phases(state.directory, node, enrolled.id, power_on)
    finally:
        if not args.keep:
            lab.down(state.directory)
    print(f"boot of one VM ({args.firmware}, TCG), seconds after power-on through the Redfish BMC:")
    for phase, seconds in found.items():
        if phase != "kernel_to_lookup":
            print(f"  {phase:<18} {'-' if seconds is None else f'{seconds:7.2f}'}")
    k2l = found["kernel_to_lookup"]
    verdict = "n/a" if k2l is None else ("met" if k2l <= BOOT_TARGET_S else "MISSED")
    print(f"kernel start -> lookup: {k2l} s, target <= {BOOT_TARGET_S:.0f} s: {verdict}")
    print(
        f"initramfs size: {size:.1f} MiB, target <= {SIZE_TARGET_MIB} MiB: "
        f"{'met' if size <= SIZE_TARGET_MIB else 'MISSED'}"
    )
    return 0 if (k2l is not None and k2l <= BOOT_TARGET_S and size <= SIZE_TARGET_MIB) else 1


if __name__ == "__main__":
    sys.exit(main())
