"""kiln-lab: a small data centre on this machine (network namespace, dnsmasq, BMCs, TCG VMs, Kiln)."""

from __future__ import annotations

import argparse
import json
import sys

from agent.lab import lab
from agent.lab.state import State, lab_dir


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(prog="kiln-lab", description="Bring Kiln's lab up or down (needs root).")
    sub = p.add_subparsers(dest="command", required=True)
    u = sub.add_parser("up", help="build the lab: network, dnsmasq, BMCs, VMs, kiln-conductor and kiln-api")
    u.add_argument("--vms", type=int, default=1, help="how many VMs (default 1)")
    u.add_argument(
        "--firmware",
        default="bios",
        help="bios (SeaBIOS), uefi (OVMF), or a list the VMs take in turn, e.g. bios,uefi (default bios)",
    )
    u.add_argument(
        "--disks",
        default="virtio",
        help="the VMs' disk buses, comma-separated: virtio, nvme (default virtio)",
    )
    u.add_argument("--no-kiln", action="store_true", help="do not start kiln-conductor and kiln-api")
    u.add_argument(
        "--switch",
        choices=["ovs"],
        help="put the VMs behind a VLAN switch: Open vSwitch (userspace) driven over SSH, sending LLDP "
        "(default: a plain Linux bridge)",
    )
    u.add_argument(
        "--nics",
        default="1",
        help="NICs per VM, comma-separated, taken in turn: 1,1,2 gives the third VM two (default 1)",
    )
    sub.add_parser("down", help="remove everything the lab created")
    sub.add_parser("status", help="print the lab's addresses, BMCs and nodes as JSON")
    sub.add_parser("leftovers", help="list what of a lab is on this host (nothing after down)")
    return p


def _print_up(state: State) -> None:
    info = state.info
    print(f"lab directory: {state.directory} (logs in {state.directory / 'logs'})")
    print(f"boot files and images: {info['http_url']}")
    if "api_url" in info:
        print(f"kiln-api: {info['api_url']}  (export OS_AUTH_TYPE=none OS_ENDPOINT={info['api_url']})")
    for node in info["nodes"]:
        print(
            f"{node['name']}: MAC {node['mac']}, "
            f"Redfish {node['redfish_address']}{node['redfish_system_id']}, "
            f"IPMI {node['ipmi_address']}:{node['ipmi_port']}, console {node['console']}"
            + (f", switch ports {', '.join(node['switch_ports'])}" if node.get("switch_ports") else "")
        )
    if "switch" in info:
        sw = info["switch"]
        print(
            f"switch {sw['name']}: provisioning VLAN {sw['provisioning_vlan']}, "
            f"parking VLAN {sw['parking_vlan']}"
        )
    print(f"BMC user {info['bmc_username']}, password {info['bmc_password']}")


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 1 with a message naming what failed."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "up":
            buses = tuple(b.strip() for b in args.disks.split(",") if b.strip())
            if not buses or any(b not in ("virtio", "nvme") for b in buses):
                print(
                    f"kiln-lab: --disks {args.disks!r}: use virtio and nvme, comma-separated", file=sys.stderr
                )
                return 1
            try:
                nics = tuple(int(n) for n in args.nics.split(",") if n.strip())
            except ValueError:
                print(f"kiln-lab: --nics {args.nics!r}: use 1 and 2, comma-separated", file=sys.stderr)
                return 1
            _print_up(
                lab.up(
                    args.vms, args.firmware, buses, kiln=not args.no_kiln, switch_kind=args.switch, nics=nics
                )
            )
        elif args.command == "down":
            for what in lab.down():
                print(f"removed {what}")
        elif args.command == "status":
            state = State.load(lab_dir())
            if state is None:
                print(f"kiln-lab: no lab is up ({lab_dir()}/state.json is missing)", file=sys.stderr)
                return 1
            json.dump(state.info, sys.stdout, indent=1, sort_keys=True)
            print()
        else:
            found = lab.leftovers()
            for what in found:
                print(what)
            return 1 if found else 0
    except RuntimeError as exc:
        print(f"kiln-lab: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
