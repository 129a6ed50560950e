"""``kiln-lab up`` and ``kiln-lab down``: build the lab in order, recording each step; remove exactly that."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

from agent.lab import bmc, net, procs, rabbit, services, switch, vms
from agent.lab.state import State, lab_dir
from agent.ramdisk import builder

IPXE_FILES = ("undionly.kpxe", "snponly.efi")
LLDP_WAIT = 20  # [agent]lldp_wait of the agents behind the lab's switch (lldpd sends every 5 s)


def _check_host() -> None:
    if os.geteuid() != 0:
        raise RuntimeError("kiln-lab needs root (network namespace, links, libvirt domains, dnsmasq)")
    for tool, package in (("ip", "iproute2"), ("dnsmasq", "dnsmasq-base"), ("qemu-img", "qemu-utils"),
                          ("qemu-system-x86_64", "qemu-system-x86")):  # fmt: skip
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} is not installed: apt-get install -y {package}")
    for name in IPXE_FILES:
        if not os.path.exists(os.path.join(services.IPXE_DIR, name)):
            raise RuntimeError(f"{services.IPXE_DIR}/{name} is missing: apt-get install -y ipxe")


def up(
    count: int = 1,
    firmware: str = "bios",
    disks: tuple[str, ...] = ("virtio",),
    directory: Path | None = None,
    kiln: bool = True,
    ramdisk: bool = True,
    conf: dict[str, dict] | None = None,
    switch_kind: str | None = None,
    nics: tuple[int, ...] = (1,),
) -> State:
    """Bring the lab up; on any failure take down what was made and raise. Return its state.

    ``firmware`` is bios, uefi, or a comma-separated list the VMs take in turn ("bios,uefi");
    ``conf`` adds options to the lab's kiln.conf ({section: {option: value}}); ``switch_kind``
    "ovs" puts the VMs behind the lab's Open vSwitch (agent.lab.switch); ``nics``: how many NICs
    each VM has, taken in turn ((1, 1, 2): the third VM has two).
    """
    if switch_kind not in (None, "ovs"):
        raise RuntimeError(f"switch {switch_kind!r}: the lab's only switch is ovs (or none: a Linux bridge)")
    if not nics or any(n not in (1, 2) for n in nics):
        raise RuntimeError(f"nics {nics!r}: each VM has 1 or 2 NICs")
    firmwares = [f.strip() for f in firmware.split(",") if f.strip()]
    if not firmwares or any(f not in ("bios", "uefi") for f in firmwares):
        raise RuntimeError(f"firmware {firmware!r}: use bios, uefi, or a comma-separated list of them")
    directory = directory or lab_dir()
    _check_host()
    if switch_kind:
        switch.check_host()
    if State.load(directory) is not None:
        raise RuntimeError(f"a lab is recorded in {directory}/state.json already: run kiln-lab down first")
    if directory.exists() and any(directory.iterdir()):
        raise RuntimeError(f"{directory} is not empty: remove it or set KILN_LAB_DIR to another directory")
    conn = vms.connect()
    state = State(directory)
    state.add("files", str(directory))
    try:
        _build(state, conn, count, firmwares, list(disks), kiln, ramdisk, conf or {}, switch_kind, list(nics))
    except BaseException:
        down(directory)
        raise
    return state


def _build(
    state: State,
    conn,
    count: int,
    firmwares: list[str],
    disks: list[str],
    kiln: bool,
    ramdisk: bool,
    conf: dict[str, dict],
    switch_kind: str | None = None,
    nics: list[int] | None = None,
) -> None:
    info = state.info
    nics = nics or [1]
    password = secrets.token_urlsafe(12)
    info.update(rabbit_password=password, bmc_username=bmc.USER, bmc_password=secrets.token_urlsafe(12))
    state.add("rabbit", rabbit.VHOST)
    rabbit.create(password)
    net.create(state, switch_kind)
    lab_vms = []
    for index in range(count):
        lowers = [net.add_vm_link(state, index, n, switch_kind) for n in range(nics[index % len(nics)])]
        firmware = firmwares[index % len(firmwares)]
        lab_vms.append(vms.define(conn, state, index, lowers, firmware, disks, offloads=switch_kind is None))
    p = services.paths(state)
    p["tftp"].mkdir(parents=True, exist_ok=True)
    for name in IPXE_FILES:
        shutil.copyfile(os.path.join(services.IPXE_DIR, name), p["tftp"] / name)
    if ramdisk:
        built = builder.build(p["http"])
        info["ramdisk"] = {"initramfs_bytes": built.initramfs_bytes, "cached": built.cached, "key": built.key}
    services.start_dnsmasq(state, switch.PROV_PORT if switch_kind else net.BRIDGE)
    info["http_url"] = services.start_server(state)
    info["transport_url_vms"] = rabbit.transport_url(password, net.HOST_IP)
    if switch_kind:
        conf = _switch_conf(state, lab_vms, conf)
    pool = vms.create_media_pool(conn, state)
    info["redfish_url"] = bmc.start_redfish(state, info["bmc_password"], [vm.uuid for vm in lab_vms], pool)
    ports = bmc.start_ipmi(state, info["bmc_password"], [vm.name for vm in lab_vms])
    info["nodes"] = [
        {
            "name": vm.name,
            "uuid": vm.uuid,
            "mac": vm.mac,
            "firmware": vm.firmware,
            "console": vm.console,
            "disks": [d["bus"] for d in vm.disks],
            "redfish_address": info["redfish_url"],
            "redfish_system_id": f"/redfish/v1/Systems/{vm.uuid}",
            "ipmi_address": bmc.ADDRESS,
            "ipmi_port": ports[vm.name],
            "macs": [nic["mac"] for nic in vm.nics],
            "console_socket": vm.console_socket,
            "switch_ports": [net.ns_link(index, n) for n in range(len(vm.nics))] if switch_kind else [],
        }
        for index, vm in enumerate(lab_vms)
    ]
    if kiln:
        path = services.write_conductor_conf(state, password, info["http_url"], conf)
        info["conf"] = str(path)
        info["api_url"] = services.start_kiln(state, path)
    state.save()
    (state.directory / "nodes.json").write_text(json.dumps(info["nodes"], indent=1))


def _switch_conf(state: State, lab_vms: list, conf: dict[str, dict]) -> dict[str, dict]:
    """Start sshd and lldpd; the conductor's switch, provisioning network and agent config on top of ``conf``.

    The agents fetch their config from the lab's HTTP server ([pxe]agent_config_url): the broker
    URL and [agent]lldp_wait, so inspection reports the switch ports lldpd announces.
    """
    info = state.info
    ports = [net.ns_link(i, n) for i, vm in enumerate(lab_vms) for n in range(len(vm.nics))]
    chassis = switch.start_lldpd(state, ports)
    options = switch.start_sshd(state, chassis)
    agent_conf = services.paths(state)["http"] / "kiln-agent.conf"
    agent_conf.write_text(
        f"[DEFAULT]\ntransport_url = {info['transport_url_vms']}\n\n[agent]\nlldp_wait = {LLDP_WAIT}\n"
    )
    info["switch"] = {"name": switch.NAME, "provisioning_vlan": switch.PROVISIONING_VLAN,
                      "parking_vlan": switch.PARKING_VLAN, "chassis_mac": chassis}  # fmt: skip
    added = {
        f"genericswitch:{switch.NAME}": options,
        "network:provisioning": {"vlan_id": switch.PROVISIONING_VLAN, "shared": "true"},
        "network": {"provisioning_network": "provisioning"},
        "conductor": {"enabled_network_interfaces": "flat,noop,multitenant"},
        "pxe": {"agent_config_url": f"{info['http_url']}/kiln-agent.conf"},
    }
    merged = {section: dict(options) for section, options in added.items()}
    for section, options in conf.items():
        merged.setdefault(section, {}).update(options)
    return merged


def down(directory: Path | None = None) -> list[str]:
    """Remove everything the lab's state records (and the lab's names, after a crash); return what was."""
    directory = directory or lab_dir()
    state = State.load(directory)
    removed: list[str] = []
    for entry in state.items("processes") if state else []:
        if procs.stop(entry):
            removed.append(f"process {entry['name']} ({entry['pid']})")
    try:
        conn = vms.connect()
    except RuntimeError:
        conn = None
    if conn is not None:
        names = set(state.items("domains") if state else []) | set(vms.lab_domains(conn))
        removed += vms.destroy(conn, sorted(names))
        removed += vms.destroy_media_pool(conn)
    removed += net.destroy(state)
    removed += switch.remove_run_dir()
    if state is not None and state.items("rabbit"):
        removed += rabbit.destroy()
    if directory.exists() and (state is not None or (directory / "nodes.json").exists()):
        shutil.rmtree(directory)
        removed.append(f"directory {directory}")
    return removed


def leftovers(directory: Path | None = None) -> list[str]:
    """What of a lab is still on this host: namespace, links, domains, vhost, directory (none after down)."""
    directory = directory or lab_dir()
    found = net.leftovers()
    try:
        conn = vms.connect()
        found += [f"domain {name}" for name in vms.lab_domains(conn)]
        found += [f"storage pool {vms.MEDIA_POOL}"] if vms.media_pool_exists(conn) else []
    except RuntimeError:
        pass
    if rabbit.exists():
        found.append(f"rabbitmq vhost {rabbit.VHOST}")
    if directory.exists():
        found.append(f"directory {directory}")
    return found
