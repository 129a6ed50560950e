"""kiln-inventory: print this host's (or a captured tree's) hardware inventory."""

from __future__ import annotations

import argparse
import json
import sys

from agent.inventory import collect as collect_mod


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(
        prog="kiln-inventory", description="Inventory a host from sysfs, procfs and the udev database."
    )
    p.add_argument("--root", default="/", help="host root or captured tree (default /)")
    p.add_argument("--format", choices=("json", "ironic", "table"), default="table")
    p.add_argument("--no-nvml", action="store_true", help="do not ask NVML even when it is available")
    p.add_argument("--include-md", action="store_true", help="report md/dm devices as disks too")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 2 when the root itself is unusable."""
    args = build_parser().parse_args(argv)
    why = collect_mod.usable_root(args.root)
    if why:
        print(f"kiln-inventory: cannot inventory: {why}", file=sys.stderr)
        return 2
    inv = collect_mod.collect(args.root, use_nvml=not args.no_nvml, include_md=args.include_md)
    if args.format == "json":
        json.dump(inv, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    elif args.format == "ironic":
        from agent.inventory.ironic import to_ironic

        json.dump(to_ironic(inv), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        from agent.inventory.table import render

        sys.stdout.write(render(inv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
