"""kiln-lab with one TCG VM enrolled with the redfish-virtual-media boot interface: the conductor builds
the ramdisk's ISO, sushy-tools (libvirt mode) inserts it as the VM's CD, the VM boots it with no PXE,
TFTP or iPXE, and its agent inspects it: the node reaches manageable with the VM's inventory."""

from __future__ import annotations

import json
import re
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from agent.lab import lab as labmod
from agent.lab import net, nodes, timeline, vms

BOOT_TIMEOUT = 400


@pytest.fixture(scope="module")
def lab(tmp_path_factory, ramdisk):
    """A one-VM lab in a directory of the test's own; taken down afterwards whatever happened."""
    if net.exists():
        pytest.skip(f"a lab is up already (netns {net.NETNS}): kiln-lab down first")
    directory = Path(tmp_path_factory.mktemp("lab")) / "lab"
    state = labmod.up(1, "bios", directory=directory)
    try:
        yield state
    finally:
        labmod.down(directory)


def _cdroms(dom) -> list[str]:
    """The source files of the domain's CD-ROM drives (its live definition while it runs)."""
    tree = ET.fromstring(dom.XMLDesc(0))
    return [
        (disk.find("source").get("file") if disk.find("source") is not None else "")
        for disk in tree.iter("disk")
        if disk.get("device") == "cdrom"
    ]


def _first_boot(dom) -> str | None:
    """What the domain boots first: the device with boot order 1, else the first <os><boot dev>."""
    tree = ET.fromstring(dom.XMLDesc(0))
    for device in tree.find("devices"):
        boot = device.find("boot")
        if boot is not None and boot.get("order") == "1":
            return device.get("device") or device.tag
    first = tree.find("os/boot")
    return None if first is None else first.get("dev")


def test_vm_boots_the_ramdisk_from_virtual_media_without_pxe(lab):
    node = lab.info["nodes"][0]
    enrolled = nodes.enroll(lab, node, boot_interface="redfish-virtual-media")
    assert enrolled.boot_interface == "redfish-virtual-media"
    conn = vms.connect()
    dom = conn.lookupByName(node["name"])
    started = time.time()
    nodes.inspect(lab, enrolled.id)
    power_on = timeline.wait_power_on(conn, node["name"], timeout=180)
    # the VM runs with the ISO in a SATA CD-ROM, uploaded into the lab's media pool
    media = lab.directory / "media"
    assert [Path(path).parent for path in _cdroms(dom)] == [media]
    assert _first_boot(dom) == "cdrom"  # the one-time boot from the CD that the conductor asked for
    found = nodes.wait_state(lab, enrolled.id, "manageable", BOOT_TIMEOUT)
    lookup = timeline.lookup_time(lab.directory, enrolled.id, power_on)
    iso_path = f"{enrolled.id}/boot.iso"
    fetched = timeline.http_time(lab.directory, iso_path, started)
    built = timeline.conductor_time(lab.directory, enrolled.id, "boot ISO", started)
    acks = timeline.dhcp_times(lab.directory, node["mac"], power_on)
    print(
        "vmedia boot (s after power-on; the ISO's steps come before it):",
        json.dumps(
            {
                "iso_built": None if built is None else round(built - power_on, 2),
                "iso_fetched_by_bmc": None if fetched is None else round(fetched - power_on, 2),
                "ramdisk_dhcp": round(acks[0] - power_on, 2) if acks else None,
                "lookup": None if lookup is None else round(lookup - power_on, 2),
                "manageable": round(time.time() - power_on, 2),
            }
        ),
    )
    assert fetched is not None  # the BMC (sushy-emulator) downloaded the ISO from the conductor's HTTP
    assert lookup is not None and acks  # the ramdisk got its lease from dnsmasq and looked the node up
    # no network boot of any kind: no PXE firmware asked dnsmasq, nothing went over TFTP, no iPXE script
    dhcp_log = (lab.directory / "logs" / "dnsmasq-dhcp.log").read_text(errors="replace")
    assert not re.search(r"PXEClient|bootfile name|iPXE", dhcp_log), dhcp_log
    tftp = [line for line in dhcp_log.splitlines() if "dnsmasq-tftp" in line and "TFTP root is" not in line]
    assert tftp == []  # dnsmasq logs each file it sends (or misses) over TFTP
    # the lab's HTTP server: the VM (an address of the DHCP range) fetched no kernel, initramfs or script
    serve_log = (lab.directory / "logs" / "serve.log").read_text(errors="replace")
    from_vm = [line for line in serve_log.splitlines() if re.match(r"^\S+ 10\.99\.0\.1\d\d ", line)]
    assert not [line for line in from_vm if re.search(r"\.ipxe|kiln-agent\.(kernel|initramfs)", line)], (
        from_vm
    )
    assert ".ipxe" not in serve_log
    assert not (lab.directory / "dnsmasq" / "opts" / enrolled.id).exists()  # empty while booting, then gone
    # clean-up: the medium is ejected (no CD-ROM left in the domain) and the ISO removed
    assert found["power_state"] == "power off"
    assert _cdroms(dom) == []
    assert not (lab.directory / "http" / enrolled.id).exists()
    request = urllib.request.Request(
        f"{lab.info['api_url']}/v1/nodes/{enrolled.id}/inventory",
        headers={"X-OpenStack-Ironic-API-Version": "1.81"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        inventory = json.load(answer)["inventory"]
    nics = inventory.get("nics") or inventory.get("interfaces") or []
    assert node["mac"] in [nic["mac_address"] for nic in nics]
    assert any(disk["name"] == "/dev/vda" for disk in inventory["disks"])


def test_down_removes_the_media_pool(lab):
    labmod.down(lab.directory)
    assert not vms.media_pool_exists(vms.connect())
    assert labmod.leftovers(lab.directory) == []
