"""read_nics and the address readers on constructed trees."""

from __future__ import annotations

import pytest

from agent.inventory.base import Root
from agent.inventory.netaddr import captured_addresses, parse_local_ipv4, parse_routes
from agent.inventory.nics import read_nics
from tests.unit.inventory.treebuild import Tree, fixture_root

VIRTIO_PCI = "/sys/devices/pci0000:00/0000:00:03.0"
CX7_PF = "/sys/devices/pci0000:15/0000:15:01.0/0000:19:00.0"
CX7_VF = "/sys/devices/pci0000:15/0000:15:01.0/0000:19:00.2"
IB_PCI = "/sys/devices/pci0000:b7/0000:b7:01.0/0000:bb:00.0"
I350 = "/sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.0"
I350_B = "/sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.1"

FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.20.0.0/24 2 0 2
        |-- 10.20.0.0
           /24 link UNICAST
        |-- 10.20.0.11
           /32 host LOCAL
        |-- 10.20.0.255
           /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 10.20.0.0/24 2 0 2
        |-- 10.20.0.11
           /32 host LOCAL
     +-- 10.10.0.0/16 2 0 2
        |-- 10.10.0.11
           /32 host LOCAL
     +-- 192.168.9.0/24 2 0 2
        |-- 192.168.9.9
           /32 host LOCAL
"""
ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "enp25s0np0\t00000000\t0100140A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "enp25s0np0\t0000140A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "eno1\t00000A0A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    "eno1\t00000A0A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n"
)
IF_INET6 = (
    "fe80000000000000a288c2fffe4e3f10 03 40 20 80 enp25s0np0\n"
    "fd000000000000000000000000000011 03 40 00 80 enp25s0np0\n"
    "00000000000000000000000000000001 01 80 10 80       lo\n"
    "zz 03 40 20 80 bad\n"
)


def _netdev(tree: Tree, name: str, device: str, *, parent_dir: str | None = None, **attrs: str) -> None:
    """Create a netdev under ``device`` with its class link and ``device`` link."""
    path = f"{parent_dir or device}/net/{name}"
    defaults = {"address": "00:00:00:00:00:00", "addr_assign_type": "0", "type": "1", "mtu": "1500"}
    tree.files(path, **{**defaults, **attrs})
    tree.link(f"{path}/device", device)
    tree.link(f"/sys/class/net/{name}", path)


def _host(tmp_path) -> Tree:
    tree = Tree(tmp_path)
    drivers = "/sys/bus/pci/drivers"
    # virtio-net: the netdev's device is virtio2, whose parent is the PCI function.
    tree.files(VIRTIO_PCI, vendor="0x1af4", device="0x1041", numa_node="-1")
    tree.mkdir("/sys/bus/virtio/drivers/virtio_net")
    tree.link(f"{VIRTIO_PCI}/virtio2/driver", "/sys/bus/virtio/drivers/virtio_net")
    _netdev(
        tree,
        "eth0",
        f"{VIRTIO_PCI}/virtio2",
        address="52:54:00:12:34:56",
        speed="-1",
        carrier="1",
        operstate="up",
    )
    # ConnectX-7 PF with SR-IOV, and a VF with its own netdev.
    tree.files(CX7_PF, vendor="0x15b3", device="0x1021", numa_node="0", sriov_totalvfs="16", sriov_numvfs="4")
    tree.mkdir(f"{drivers}/mlx5_core")
    tree.link(f"{CX7_PF}/driver", f"{drivers}/mlx5_core")
    _netdev(
        tree,
        "enp25s0np0",
        CX7_PF,
        address="A0:88:C2:4E:3F:10",
        speed="400000",
        carrier="1",
        operstate="up",
        mtu="9000",
    )
    tree.files(CX7_VF, vendor="0x15b3", device="0x101e", numa_node="0")
    tree.link(f"{CX7_VF}/physfn", CX7_PF)
    tree.link(f"{CX7_VF}/driver", f"{drivers}/mlx5_core")
    _netdev(tree, "enp25s0v0", CX7_VF, address="02:11:22:33:44:55", addr_assign_type="1", speed="400000")
    # InfiniBand port and its RDMA device.
    tree.files(IB_PCI, vendor="0x15b3", device="0x1021", numa_node="1", sriov_totalvfs="16", sriov_numvfs="0")
    tree.link(f"{IB_PCI}/driver", f"{drivers}/mlx5_core")
    ib_addr = "00:00:10:29:fe:80:00:00:00:00:00:00:a0:88:c2:03:00:4e:3f:70"
    _netdev(tree, "ibp187s0", IB_PCI, address=ib_addr, type="32", mtu="4092", speed="400000", carrier="1")
    tree.files(f"{IB_PCI}/infiniband/mlx5_6", node_guid="a088:c203:004e:3f70")
    tree.link(f"{IB_PCI}/infiniband/mlx5_6/device", IB_PCI)
    tree.link("/sys/class/infiniband/mlx5_6", f"{IB_PCI}/infiniband/mlx5_6")
    # Two i350 ports enslaved to a bond: current MAC is the bond's, the permanent one is in bonding_slave.
    for path, name, perm in ((I350, "eno1", "3c:ec:ef:12:34:56"), (I350_B, "eno2", "3c:ec:ef:12:34:57")):
        tree.files(path, vendor="0x8086", device="0x1521", numa_node="0")
        tree.mkdir(f"{drivers}/igb")
        tree.link(f"{path}/driver", f"{drivers}/igb")
        _netdev(tree, name, path, address="3c:ec:ef:12:34:56", speed="1000", carrier="1", operstate="up")
        tree.write(f"/sys/class/net/{name}/bonding_slave/perm_hwaddr", perm)
    # Software interfaces: no device link, never reported.
    for name in ("lo", "bond0", "br0", "veth1a2b"):
        tree.files(f"/sys/devices/virtual/net/{name}", address="00:00:00:00:00:00", mtu="1500")
        tree.link(f"/sys/class/net/{name}", f"/sys/devices/virtual/net/{name}")
    tree.write("/proc/net/fib_trie", FIB_TRIE)
    tree.write("/proc/net/route", ROUTE)
    tree.write("/proc/net/if_inet6", IF_INET6)
    return tree


def _nics(tmp_path):
    root = Root(str(tmp_path))
    nics = read_nics(root)
    return root, nics, {n["name"]: n for n in nics}


def test_only_device_backed_sorted(tmp_path):
    _host(tmp_path)
    root, nics, _ = _nics(tmp_path)
    assert [n["name"] for n in nics] == ["eno1", "eno2", "enp25s0np0", "enp25s0v0", "eth0", "ibp187s0"]
    assert root.errors == []


def test_connectx_pf(tmp_path):
    _host(tmp_path)
    assert _nics(tmp_path)[2]["enp25s0np0"] == {
        "name": "enp25s0np0",
        "mac_address": "a0:88:c2:4e:3f:10",
        "current_mac_address": "a0:88:c2:4e:3f:10",
        "ipv4_addresses": ["10.20.0.11"],
        "ipv6_addresses": ["fd00::11", "fe80::a288:c2ff:fe4e:3f10"],  # sorted: one order live or captured
        "carrier": True,
        "operstate": "up",
        "speed_mbps": 400000,
        "mtu": 9000,
        "driver": "mlx5_core",
        "pci_address": "0000:19:00.0",
        "vendor_id": "0x15b3",
        "device_id": "0x1021",
        "numa_node": 0,
        "sriov_totalvfs": 16,
        "sriov_numvfs": 4,
        "infiniband_guid": None,
        "link_type": "ethernet",
        "is_virtual_function": False,
    }


def test_virtual_function(tmp_path):
    _host(tmp_path)
    vf = _nics(tmp_path)[2]["enp25s0v0"]
    assert vf["is_virtual_function"] is True
    assert (vf["pci_address"], vf["device_id"], vf["sriov_totalvfs"]) == ("0000:19:00.2", "0x101e", None)
    assert vf["mac_address"] == "02:11:22:33:44:55"  # a captured tree cannot ask the kernel for more
    assert vf["carrier"] is None and vf["operstate"] is None  # absent files are unknown, not errors


def test_virtio_pci_function_is_the_parent(tmp_path):
    _host(tmp_path)
    eth0 = _nics(tmp_path)[2]["eth0"]
    assert (eth0["driver"], eth0["pci_address"], eth0["vendor_id"], eth0["device_id"]) == (
        "virtio_net",
        "0000:00:03.0",
        "0x1af4",
        "0x1041",
    )
    assert eth0["numa_node"] is None and eth0["speed_mbps"] is None


def test_infiniband(tmp_path):
    _host(tmp_path)
    ib = _nics(tmp_path)[2]["ibp187s0"]
    assert ib["link_type"] == "infiniband"
    assert ib["infiniband_guid"] == "a088:c203:004e:3f70"
    assert ib["mac_address"] == "00:00:10:29:fe:80:00:00:00:00:00:00:a0:88:c2:03:00:4e:3f:70"
    assert (ib["mtu"], ib["numa_node"], ib["pci_address"]) == (4092, 1, "0000:bb:00.0")


def test_bond_slaves_report_their_permanent_mac(tmp_path):
    _host(tmp_path)
    nics = _nics(tmp_path)[2]
    assert (nics["eno2"]["mac_address"], nics["eno2"]["current_mac_address"]) == (
        "3c:ec:ef:12:34:57",
        "3c:ec:ef:12:34:56",
    )
    assert nics["eno1"]["ipv4_addresses"] == ["10.10.0.11"]  # the most specific connected route wins
    assert nics["eno2"]["ipv4_addresses"] == []


@pytest.mark.parametrize(
    ("value", "expected", "recorded"), [("abc", None, True), ("-1", None, False), ("0", None, False)]
)
def test_speed_values(tmp_path, value, expected, recorded):
    tree = _host(tmp_path)
    tree.write("/sys/class/net/enp25s0np0/speed", value)
    root, _, nics = _nics(tmp_path)
    assert nics["enp25s0np0"]["speed_mbps"] == expected
    assert [p.path for p in root.errors] == (["/sys/class/net/enp25s0np0/speed"] if recorded else [])


def test_garbled_mac_is_recorded(tmp_path):
    tree = _host(tmp_path)
    tree.write("/sys/class/net/eth0/address", "not-a-mac")
    root, _, nics = _nics(tmp_path)
    assert nics["eth0"]["mac_address"] is None
    assert [p.path for p in root.errors] == ["/sys/class/net/eth0/address"]


def test_no_network_class(tmp_path):
    Tree(tmp_path).mkdir("/sys")
    root = Root(str(tmp_path))
    assert read_nics(root) == []
    assert [p.path for p in root.errors] == ["/sys/class/net"]


def test_fib_trie_local_addresses():
    assert parse_local_ipv4(FIB_TRIE) == ["10.20.0.11", "127.0.0.1", "10.10.0.11", "192.168.9.9"]


def test_routes_skip_gateways():
    assert [(name, str(net)) for name, net in parse_routes(ROUTE)] == [
        ("enp25s0np0", "10.20.0.0/24"),
        ("eno1", "10.10.0.0/16"),
        ("eno1", "10.0.0.0/8"),
    ]


def test_captured_addresses(tmp_path):
    _host(tmp_path)
    addrs = captured_addresses(Root(str(tmp_path)))
    assert addrs == {
        "enp25s0np0": (["10.20.0.11"], ["fe80::a288:c2ff:fe4e:3f10", "fd00::11"]),
        "eno1": (["10.10.0.11"], []),
        "lo": ([], ["::1"]),
    }


def test_hgx_h100_fixture():
    root = fixture_root("hgx-h100")
    nics = {n["name"]: n for n in read_nics(root)}
    assert sorted(nics) == sorted(
        ["eno1", "enp25s0np0", "enp43s0np0", "enp59s0np0", "enp93s0np0", "enp155s0np0", "enp172s0np0"]
        + ["ibp187s0", "ibp220s0"]
    )
    pf = nics["enp25s0np0"]
    assert (pf["mac_address"], pf["ipv4_addresses"], pf["speed_mbps"], pf["mtu"]) == (
        "a0:88:c2:4e:3f:10",
        ["10.20.0.11"],
        400000,
        9000,
    )
    assert (pf["pci_address"], pf["vendor_id"], pf["device_id"], pf["numa_node"]) == (
        "0000:19:00.0",
        "0x15b3",
        "0x1021",
        0,
    )
    assert (pf["sriov_totalvfs"], pf["sriov_numvfs"], pf["driver"], pf["link_type"]) == (
        16,
        4,
        "mlx5_core",
        "ethernet",
    )
    assert pf["infiniband_guid"] is None
    ib = nics["ibp220s0"]
    assert (ib["link_type"], ib["infiniband_guid"], ib["mtu"], ib["numa_node"]) == (
        "infiniband",
        "a088:c203:004e:3f80",
        4092,
        1,
    )
    assert ib["mac_address"] == "00:00:10:29:fe:80:00:00:00:00:00:00:a0:88:c2:03:00:4e:3f:80"
    eno1 = nics["eno1"]
    assert (eno1["driver"], eno1["speed_mbps"], eno1["ipv4_addresses"]) == ("igb", 1000, ["10.10.0.11"])
    # the deliberate problem: enp172s0np0's speed reads "abc"
    assert nics["enp172s0np0"]["speed_mbps"] is None
    assert [(p.path, p.error) for p in root.errors] == [
        ("/sys/class/net/enp172s0np0/speed", "garbled: expected an integer, got 'abc'")
    ]


def test_storage_sas_fixture_link_down():
    root = fixture_root("storage-sas")
    nics = {n["name"]: n for n in read_nics(root)}
    assert sorted(nics) == ["ens1f0", "ens1f1"]
    up, down = nics["ens1f0"], nics["ens1f1"]
    assert (up["speed_mbps"], up["carrier"], up["ipv4_addresses"], up["driver"]) == (
        25000,
        True,
        ["10.30.0.21"],
        "ice",
    )
    assert (down["speed_mbps"], down["carrier"], down["operstate"]) == (None, False, "down")
    assert down["mac_address"] == "b4:96:91:a1:b2:c1" and down["pci_address"] == "0000:4b:00.1"
    assert root.errors == []


def test_vm_fixture_virtio():
    root = fixture_root("vm")
    (eth0,) = read_nics(root)
    assert (eth0["name"], eth0["mac_address"], eth0["driver"]) == ("eth0", "52:54:00:12:34:56", "virtio_net")
    assert (eth0["pci_address"], eth0["vendor_id"], eth0["device_id"]) == ("0000:00:03.0", "0x1af4", "0x1000")
    assert (eth0["speed_mbps"], eth0["numa_node"], eth0["ipv4_addresses"]) == (None, None, ["192.168.122.50"])
    assert root.errors == []


def test_host_kvm_capture():
    root = fixture_root("host-kvm")
    (eth0,) = read_nics(root)  # lo, ifb0 and ifb1 have no device
    assert (eth0["name"], eth0["mac_address"], eth0["mtu"], eth0["driver"]) == (
        "eth0",
        "02:fc:00:00:00:01",
        1400,
        "virtio_net",
    )
    assert (eth0["ipv4_addresses"], sorted(eth0["ipv6_addresses"])) == (
        ["192.0.2.2"],
        ["fd00::2", "fe80::fc:ff:fe00:1"],
    )
    assert (eth0["pci_address"], eth0["vendor_id"], eth0["device_id"]) == ("0000:00:03.0", "0x1af4", "0x1041")
    assert (eth0["carrier"], eth0["operstate"], eth0["speed_mbps"]) == (True, "up", None)
    assert root.errors == []


def test_garbled_route_lines_are_skipped():
    text = ROUTE + "eth9\tFFFFFFFFFF\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\nshort line\n"
    assert [name for name, _ in parse_routes(text)] == ["enp25s0np0", "eno1", "eno1"]
