"""PCI functions: ids, driver, NUMA, PCIe link, switch position and bad-data handling."""

from __future__ import annotations

import os

from agent.inventory import pci
from agent.inventory.base import Root
from tests.unit.inventory.treebuild import Tree


def add_function(
    tree: Tree,
    bdf: str,
    vendor: str,
    device: str,
    cls: str,
    *,
    parent: str | None = None,
    driver: str | None = None,
    numa: str = "-1",
    **attrs: str | bytes,
) -> str:
    """Create a PCI function directory (below ``parent``, else the host bridge) and its bus link."""
    base = f"/sys/devices/pci{bdf[:7]}" if parent is None else _device_dir(tree, parent)
    path = f"{base}/{bdf}"
    tree.files(path, vendor=vendor, device=device, **{"class": cls}, revision="0xa1", numa_node=numa, **attrs)
    tree.link(f"/sys/bus/pci/devices/{bdf}", path)
    if driver:
        tree.mkdir(f"/sys/bus/pci/drivers/{driver}")
        tree.link(f"{path}/driver", f"/sys/bus/pci/drivers/{driver}")
    return path


def _device_dir(tree: Tree, bdf: str) -> str:
    real = os.path.realpath(tree.host(f"/sys/bus/pci/devices/{bdf}"))
    return real[len(tree.path) :]


def switch_tree(tree: Tree) -> None:
    """Root port 15:01.0, switch 16:00.0 (downstream 17:00.0, 17:01.0), GPU 18:00.0, NIC 19:00.0."""
    add_function(tree, "0000:15:01.0", "0x8086", "0x352a", "0x060400")
    add_function(tree, "0000:16:00.0", "0x1000", "0xc030", "0x060400", parent="0000:15:01.0")
    add_function(tree, "0000:17:00.0", "0x1000", "0xc030", "0x060400", parent="0000:16:00.0")
    add_function(tree, "0000:17:01.0", "0x1000", "0xc030", "0x060400", parent="0000:16:00.0")
    add_function(
        tree, "0000:18:00.0", "0x10de", "0x2330", "0x030200", parent="0000:17:00.0", driver="nvidia", numa="0"
    )
    add_function(
        tree, "0000:19:00.0", "0x15b3", "0x1021", "0x020000", parent="0000:17:01.0", driver="mlx5_core"
    )


def test_read_pci_devices_formats_ids_and_sorts_by_address(tmp_path):
    tree = Tree(tmp_path)
    add_function(tree, "0000:3a:00.0", "0x10de", "0x2330", "0x030200", driver="nvidia", numa="1")
    add_function(tree, "0000:00:1f.2", "0x8086", "0x2922", "0x010601", driver="ahci")
    root = Root(str(tmp_path))

    devices = pci.read_pci_devices(root)

    assert [d["address"] for d in devices] == ["0000:00:1f.2", "0000:3a:00.0"]
    assert devices[1] == {
        "address": "0000:3a:00.0",
        "vendor_id": "0x10de",
        "device_id": "0x2330",
        "class_code": "0x030200",
        "revision": "0xa1",
        "driver": "nvidia",
        "numa_node": 1,
    }
    assert devices[0]["numa_node"] is None  # -1: no affinity
    assert root.errors == []


def test_garbled_class_is_recorded_and_the_device_kept(tmp_path):
    tree = Tree(tmp_path)
    add_function(tree, "0000:00:02.0", "0x1af4", "0x1042", "not-a-class")
    root = Root(str(tmp_path))

    devices = pci.read_pci_devices(root)

    assert devices[0]["class_code"] is None
    assert devices[0]["vendor_id"] == "0x1af4"
    assert [(e.path, e.error[:8]) for e in root.errors] == [
        ("/sys/devices/pci0000:00/0000:00:02.0/class", "garbled:")
    ]


def test_a_looping_device_link_is_skipped_and_recorded(tmp_path):
    tree = Tree(tmp_path)
    add_function(tree, "0000:00:03.0", "0x1af4", "0x1041", "0x020000")
    os.makedirs(tree.host("/sys/bus/pci/devices"), exist_ok=True)
    os.symlink("0000:00:09.0", tree.host("/sys/bus/pci/devices/0000:00:09.0"))  # points at itself
    root = Root(str(tmp_path))

    devices = pci.read_pci_devices(root)

    assert [d["address"] for d in devices] == ["0000:00:03.0"]
    assert len(root.errors) == 1
    assert root.errors[0].path == "/sys/bus/pci/devices/0000:00:09.0"
    assert root.errors[0].error.startswith("ELOOP")


def test_a_dangling_device_link_and_a_bad_name_are_recorded(tmp_path):
    tree = Tree(tmp_path)
    os.makedirs(tree.host("/sys/bus/pci/devices"))
    os.symlink("../../../devices/pci0000:00/0000:00:04.0", tree.host("/sys/bus/pci/devices/0000:00:04.0"))
    tree.mkdir("/sys/bus/pci/devices/garbage")
    root = Root(str(tmp_path))

    assert pci.read_pci_devices(root) == []
    assert sorted(e.path for e in root.errors) == [
        "/sys/bus/pci/devices/0000:00:04.0",
        "/sys/bus/pci/devices/garbage",
    ]


def test_pci_function_is_read_once_and_cached(tmp_path):
    tree = Tree(tmp_path)
    add_function(tree, "0000:00:03.0", "0x1af4", "0x1041", "0x020000", local_cpulist="0-3")
    root = Root(str(tmp_path))

    first = pci.pci_function(root, "0000:00:03.0")
    tree.write("/sys/devices/pci0000:00/0000:00:03.0/vendor", "0xffff")

    assert pci.pci_function(root, "0000:00:03.0") is first
    assert first.vendor_id == 0x1AF4
    assert first.local_cpulist == "0-3"
    assert first.path == "/sys/devices/pci0000:00/0000:00:03.0"


def _link_tree(tmp_path, cur_speed, cur_width, max_speed="32.0 GT/s PCIe", max_width="16") -> Root:
    tree = Tree(tmp_path)
    attrs = {"max_link_speed": max_speed, "max_link_width": max_width}
    if cur_speed is not None:
        attrs["current_link_speed"] = cur_speed
    if cur_width is not None:
        attrs["current_link_width"] = cur_width
    add_function(tree, "0000:18:00.0", "0x10de", "0x2330", "0x030200", **attrs)
    return Root(str(tmp_path))


def test_pcie_link_healthy(tmp_path):
    link = pci.pcie_link(_link_tree(tmp_path, "32.0 GT/s PCIe", "16"), "0000:18:00.0")
    assert link == {
        "current_speed": "32.0 GT/s PCIe",
        "current_width": 16,
        "max_speed": "32.0 GT/s PCIe",
        "max_width": 16,
        "degraded": False,
    }


def test_pcie_link_narrow_width_is_degraded(tmp_path):
    link = pci.pcie_link(_link_tree(tmp_path, "32.0 GT/s PCIe", "8"), "0000:18:00.0")
    assert link["current_width"] == 8
    assert link["degraded"] is True


def test_pcie_link_slow_speed_is_degraded_numerically(tmp_path):
    # "8.0" < "32.0" numerically although "8.0" > "32.0" as strings
    link = pci.pcie_link(_link_tree(tmp_path, "8.0 GT/s PCIe", "16"), "0000:18:00.0")
    assert link["degraded"] is True


def test_pcie_link_unknown_speed_is_none(tmp_path):
    link = pci.pcie_link(_link_tree(tmp_path, "Unknown", None), "0000:18:00.0")
    assert link["current_speed"] is None
    assert link["current_width"] is None
    assert link["degraded"] is None


def test_pcie_link_of_a_missing_function(tmp_path):
    link = pci.pcie_link(Root(str(tmp_path)), "0000:99:00.0")
    assert link["degraded"] is None and link["max_speed"] is None


def test_parse_link_speed():
    assert pci.parse_link_speed("32.0 GT/s PCIe") == 32.0
    assert pci.parse_link_speed("2.5 GT/s") == 2.5
    assert pci.parse_link_speed("8 GT/s") == 8.0
    assert pci.parse_link_speed("Unknown") is None
    assert pci.parse_link_speed("") is None
    assert pci.parse_link_speed(None) is None


def test_switch_ports_name_the_switch_by_its_upstream_port(tmp_path):
    tree = Tree(tmp_path)
    switch_tree(tree)
    root = Root(str(tmp_path))

    assert pci.ancestors(root, "0000:18:00.0") == ["0000:15:01.0", "0000:16:00.0", "0000:17:00.0"]
    # GPU and NIC hang off different downstream ports of one switch: same pcie switch
    assert pci.switch_ports(root, "0000:18:00.0") == ("0000:16:00.0", "0000:16:00.0")
    assert pci.switch_ports(root, "0000:19:00.0") == ("0000:16:00.0", "0000:16:00.0")


def test_switch_ports_with_two_cascaded_switches(tmp_path):
    tree = Tree(tmp_path)
    add_function(tree, "0000:00:01.0", "0x8086", "0x352a", "0x060400")
    add_function(tree, "0000:01:00.0", "0x1000", "0xc030", "0x060400", parent="0000:00:01.0")
    add_function(tree, "0000:02:00.0", "0x1000", "0xc030", "0x060400", parent="0000:01:00.0")
    add_function(tree, "0000:03:00.0", "0x1000", "0xc030", "0x060400", parent="0000:02:00.0")
    add_function(tree, "0000:04:00.0", "0x1000", "0xc030", "0x060400", parent="0000:03:00.0")
    add_function(tree, "0000:05:00.0", "0x10de", "0x2330", "0x030200", parent="0000:04:00.0")
    root = Root(str(tmp_path))

    assert pci.switch_ports(root, "0000:05:00.0") == ("0000:03:00.0", "0000:01:00.0")


def test_switch_ports_directly_on_a_root_port(tmp_path):
    tree = Tree(tmp_path)
    add_function(tree, "0000:00:01.0", "0x8086", "0x352a", "0x060400")
    add_function(tree, "0000:01:00.0", "0x10de", "0x2331", "0x030200", parent="0000:00:01.0")
    assert pci.switch_ports(Root(str(tmp_path)), "0000:01:00.0") == (None, None)


def _config_with_port_type(ptype: int) -> bytes:
    cfg = bytearray(256)
    cfg[0x06] = 0x10  # capability list present
    cfg[0x34] = 0x40
    cfg[0x40:0x42] = bytes([0x01, 0x60])  # power management, next 0x60
    cfg[0x60:0x64] = bytes([0x10, 0x00]) + (0x0002 | ptype << 4).to_bytes(2, "little")
    return bytes(cfg)


def test_port_type_from_config_space_overrides_the_chain_guess(tmp_path):
    tree = Tree(tmp_path)
    add_function(tree, "0000:00:01.0", "0x8086", "0x352a", "0x060400", config=_config_with_port_type(4))
    # config space says downstream port, where the chain guess would say upstream port
    add_function(
        tree,
        "0000:01:00.0",
        "0x1000",
        "0xc030",
        "0x060400",
        parent="0000:00:01.0",
        config=_config_with_port_type(6),
    )
    add_function(tree, "0000:02:00.0", "0x10de", "0x2330", "0x030200", parent="0000:01:00.0")
    root = Root(str(tmp_path))

    assert pci.port_type(root, "0000:00:01.0") == pci.PORT_ROOT
    assert pci.port_type(root, "0000:01:00.0") == pci.PORT_SWITCH_DOWNSTREAM
    assert pci.switch_ports(root, "0000:02:00.0") == (
        None,
        None,
    )  # a downstream port with no upstream port known


def test_config_space_parser_rejects_short_and_looping_lists():
    assert pci._config_port_type(b"\x00" * 64) is None
    assert pci._config_port_type(None) is None
    looping = bytearray(256)
    looping[0x06], looping[0x34] = 0x10, 0x40
    looping[0x40:0x42] = bytes([0x01, 0x40])  # points at itself
    assert pci._config_port_type(bytes(looping)) is None
    assert pci._config_port_type(_config_with_port_type(5)) == pci.PORT_SWITCH_UPSTREAM


def test_functions_by_class(tmp_path):
    tree = Tree(tmp_path)
    switch_tree(tree)
    root = Root(str(tmp_path))
    assert [f.address for f in pci.functions_by_class(root, 0x0302)] == ["0000:18:00.0"]
    assert len(pci.functions_by_class(root, 0x0604)) == 4
