"""One real deploy, phase by phase, and the wall time of deploying 1 VM and N VMs at once (lab, TCG).

Run as root: ``python -m bench.lab_deploy_bench [--vms 4] [--firmware bios]``. It brings a lab of N
VMs up, enrolls them (Redfish), makes them available without cleaning, and deploys the test OS
image (kiln-image) with a configdrive: first vm0 alone, then, after undeploying it, all N at once.
A deploy ends when the deployed OS prints its cloud-init result on the console. Phases are seconds
after the deploy request: power on (libvirt sees the domain run), DHCP (dnsmasq's first ACK, whole
seconds), ramdisk lookup (the conductor issues the agent token), image written (image and
configdrive on disk: the conductor moves to prepare_instance_boot), reboot (the domain runs again),
OS up. The baseline is the one-VM deploy: N at once is compared with N of them one after another.

Then it splits the extra time of N at once over 1 alone (bench.lab_attribution): VM stall, BMC
calls, waits inside Kiln (the conductor's [conductor]wait_timing_log), and the VMs' CPU lower bound.
``--logs DIR`` keeps the raw data there (timeline.json, waits.jsonl, cpu.jsonl, the conductor's
log); ``--replay DIR`` recomputes the attribution from such a directory, without VMs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import lab_attribution

OS_UP = re.compile(rb"kiln-test-os up: hostname=")
PHASES = ("power_on", "dhcp", "lookup", "image_written", "reboot", "os_up")
TIMEOUT = 1800


class Watch(threading.Thread):
    """Polls one VM: the times its domain starts running, and when its console shows the OS up."""

    def __init__(self, conn, node: dict, started: float) -> None:
        super().__init__(daemon=True)
        self.dom = conn.lookupByName(node["name"])
        self.console = Path(node["console"])
        self.skip = self._os_ups()
        self.starts: list[float] = []
        self.os_up: float | None = None
        self.started = started
        self.stop = threading.Event()

    def _os_ups(self) -> int:
        try:
            return len(OS_UP.findall(self.console.read_bytes()))
        except FileNotFoundError:
            return 0

    def run(self) -> None:
        """Poll every 0.2 s until the OS is up or stop is set."""
        was = self.dom.isActive()
        while not self.stop.is_set() and self.os_up is None:
            now = self.dom.isActive()
            if now and not was:
                self.starts.append(time.time())
            was = now
            if self._os_ups() > self.skip:
                self.os_up = time.time()
            time.sleep(0.2)


def _phases(lab: Path, node: dict, uuid: str, watch: Watch) -> dict[str, float | None]:
    from agent.lab import timeline

    t0 = watch.started
    power_on = watch.starts[0] if watch.starts else None
    acks = timeline.dhcp_times(lab, node["mac"], power_on or t0)
    found = {
        "power_on": power_on,
        "dhcp": acks[0] if acks else None,
        "lookup": timeline.lookup_time(lab, uuid, t0),
        "image_written": timeline.conductor_time(lab, uuid, "deploy step prepare_instance_boot", t0),
        "reboot": watch.starts[1] if len(watch.starts) > 1 else None,
        "os_up": watch.os_up,
    }
    return {k: None if v is None else round(v - t0, 1) for k, v in found.items()}


def _deploy(state, conn, sdk, indexes: list[int], uuids: list[str], image) -> tuple[float, list[dict], dict]:
    """Deploy the VMs at ``indexes`` at once; the wall time to the last OS up, each one's phases, the run."""
    nodes = state.info["nodes"]
    for i in indexes:  # undeploying clears instance_info
        sdk.baremetal.update_node(
            uuids[i],
            instance_info={
                "image_source": f"{state.info['http_url']}/{image.image.name}",
                "image_checksum": image.sha256,
                "image_disk_format": "qcow2",
            },
        )
    started = time.time()
    watches = [Watch(conn, nodes[i], started) for i in indexes]
    for w in watches:
        w.start()
    for i in indexes:
        drive = {
            "meta_data": {"uuid": uuids[i], "hostname": f"bench-{i}"},
            "network_data": {
                "links": [{"id": "eth0", "type": "phy", "ethernet_mac_address": nodes[i]["mac"]}],
                "networks": [
                    {
                        "id": "lab",
                        "link": "eth0",
                        "type": "ipv4",
                        "ip_address": f"10.99.0.{60 + i}",
                        "netmask": "255.255.255.0",
                        "network_id": "lab",
                    }
                ],  # fmt: skip
                "services": [],
            },
        }
        sdk.baremetal.set_node_provision_state(uuids[i], "active", config_drive=drive)
    deadline = time.monotonic() + TIMEOUT
    for w, i in zip(watches, indexes, strict=True):
        while w.os_up is None:
            node = sdk.baremetal.get_node(uuids[i])
            if node.provision_state.endswith("failed") or time.monotonic() > deadline:
                for each in watches:
                    each.stop.set()
                raise RuntimeError(f"{nodes[i]['name']}: {node.provision_state}: {node.last_error}")
            time.sleep(2)
    wall = max(w.os_up for w in watches) - started
    run = {
        "started": started,
        "loadavg": list(os.getloadavg()),
        "vms": [
            {"name": nodes[i]["name"], "uuid": uuids[i], "os_up": w.os_up}
            for w, i in zip(watches, indexes, strict=True)
        ],
    }
    return (
        wall,
        [_phases(state.directory, nodes[i], uuids[i], w) for w, i in zip(watches, indexes, strict=True)],
        run,
    )


def _print(title: str, rows: list[dict], names: list[str]) -> None:
    print(title)
    print(f"  {'VM':<14}" + "".join(f"{p:>14}" for p in PHASES))
    for name, row in zip(names, rows, strict=True):
        print(f"  {name:<14}" + "".join(f"{'-' if row[p] is None else row[p]:>14}" for p in PHASES))


def main(argv: list[str] | None = None) -> int:
    """Bring a lab up, deploy 1 VM then N at once, print the phases and wall times, take it down."""
    from agent.image import builder as image_builder
    from agent.lab import lab, nodes, vms

    p = argparse.ArgumentParser(prog="python -m bench.lab_deploy_bench")
    p.add_argument("--vms", type=int, default=4, help="VMs deployed at once (default 4)")
    p.add_argument("--firmware", default="bios", help="bios, uefi or a list (bios,uefi)")
    p.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    p.add_argument("--logs", type=Path, help="keep the raw data of the attribution in this directory")
    p.add_argument("--replay", type=Path, help="only recompute the attribution from a --logs directory")
    args = p.parse_args(argv)
    if args.replay:
        print(lab_attribution.report(lab_attribution.load(args.replay)))
        return 0

    logs = (args.logs or Path(tempfile.mkdtemp(prefix="lab-bench-"))).absolute()
    logs.mkdir(parents=True, exist_ok=True)
    for name in ("waits.jsonl", "cpu.jsonl"):
        (logs / name).unlink(missing_ok=True)
    loadavg = list(os.getloadavg())
    state = lab.up(
        args.vms, args.firmware, conf={"conductor": {"wait_timing_log": str(logs / "waits.jsonl")}}
    )
    sampler = None
    try:
        image = image_builder.build(state.directory / "http")
        image_mib = image.size / 2**20  # the file goes with the lab
        sdk = nodes.connection(state)
        uuids = []
        for node in state.info["nodes"]:
            enrolled = nodes.enroll(state, node)
            sdk.baremetal.update_node(enrolled.id, is_automated_clean_enabled=False)
            sdk.baremetal.set_node_provision_state(enrolled.id, "provide", wait=True, timeout=120)
            uuids.append(enrolled.id)
        conn = vms.connect()
        sampler = lab_attribution.Sampler(logs / "cpu.jsonl", [n["name"] for n in state.info["nodes"]])
        sampler.start()
        one, rows, run_one = _deploy(state, conn, sdk, [0], uuids, image)
        _print(f"one deploy ({args.firmware}, TCG), seconds after the deploy request:", rows, ["vm0"])
        sdk.baremetal.set_node_provision_state(uuids[0], "deleted", wait=True, timeout=600)
        many, rows, run_many = _deploy(state, conn, sdk, list(range(args.vms)), uuids, image)
        _print(f"{args.vms} deploys at once:", rows, [n["name"][-3:] for n in state.info["nodes"]])
        timeline = {"cores": os.cpu_count(), "loadavg": loadavg, "runs": {"one": run_one, "many": run_many}}
        (logs / "timeline.json").write_text(json.dumps(timeline, indent=1))
    finally:
        if sampler is not None:
            sampler.stop.set()
            sampler.join()
        conductor_log = state.directory / "logs" / "kiln-conductor.log"
        if conductor_log.exists():
            shutil.copyfile(conductor_log, logs / "kiln-conductor.log")
        if not args.keep:
            lab.down(state.directory)
    print(f"image: {image_mib:.1f} MiB qcow2")
    print(f"wall time, 1 VM: {one:.1f} s")
    print(
        f"wall time, {args.vms} VMs at once: {many:.1f} s; "
        f"one after another would take ~{one * args.vms:.1f} s: "
        f"ratio {many / (one * args.vms):.2f} (baseline: {args.vms} x the 1-VM deploy)"
    )
    print(lab_attribution.report(lab_attribution.load(logs)))
    print(f"raw data: {logs} (python -m bench.lab_deploy_bench --replay {logs})")
    return 0


if __name__ == "__main__":
    shutil.which("qemu-img") or sys.exit("qemu-img is missing: apt-get install -y qemu-utils")
    sys.exit(main())
