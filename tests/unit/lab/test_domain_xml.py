"""The lab's domain XML: one macvtap NIC per host link, offloads off behind the switch, a console socket."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from agent.lab import net, vms


def _vm(offloads: bool, nics: int) -> vms.VM:
    lowers = [net.host_link(3, n) for n in range(nics)]
    return vms.VM(
        name="kiln-lab-vm3", uuid="0b1c0d1e-9f2a-4c3b-8d7e-6f5a4b3c2d1e", mac=vms.mac_of(3), lower=lowers[0],
        console="/lab/vms/kiln-lab-vm3.console.log",
        nics=[{"mac": vms.mac_of(3, n), "lower": dev} for n, dev in enumerate(lowers)],
        console_socket="/lab/vms/kiln-lab-vm3.console.sock", offloads=offloads,
    )  # fmt: skip


def test_two_nics_behind_the_switch_offer_the_guest_no_offloads():
    root = ET.fromstring(vms.render(_vm(offloads=False, nics=2)))
    nics = root.findall("devices/interface")
    assert [n.find("mac").get("address") for n in nics] == ["52:54:00:99:00:04", "52:54:00:99:01:04"]
    assert [n.find("source").get("dev") for n in nics] == ["kl-vm3", "kl-vm3n1"]
    for nic in nics:
        assert (
            nic.get("trustGuestRxFilters") == "yes"
        )  # the guest's multicast list (LLDP) reaches the macvtap
        assert nic.find("driver/host").get("csum") == "off" and nic.find("driver/guest").get("csum") == "off"
    serial = root.find("devices/serial")
    assert serial.get("type") == "unix" and serial.find("source").get("mode") == "bind"
    assert serial.find("source").get("path").endswith(".console.sock")
    assert serial.find("log").get("file").endswith(".console.log")


def test_the_bridge_lab_keeps_offloads_and_one_nic():
    root = ET.fromstring(vms.render(_vm(offloads=True, nics=1)))
    (nic,) = root.findall("devices/interface")
    assert nic.find("driver") is None and nic.get("trustGuestRxFilters") is None
    assert net.ns_link(3) == "vm3" and net.ns_link(3, 1) == "vm3n1"
