"""to_ironic(): ironic-python-agent 13's inventory shape, checked against IPA's own output."""

from __future__ import annotations

import copy
import json
import os

import pytest

from agent.inventory.collect import collect
from agent.inventory.ironic import EXTRA_KEYS, IPA_KEYS, from_ironic, ipa_part, to_ironic
from agent.inventory.schema import validate_inventory

HERE = os.path.dirname(__file__)
SYSFS = os.path.join(HERE, "..", "..", "fixtures", "sysfs")
IPA = os.path.join(HERE, "..", "..", "fixtures", "ipa")
HOST_KVM = os.path.join(SYSFS, "host-kvm")
HGX = os.path.join(SYSFS, "hgx-h100")

needs_host_kvm = pytest.mark.skipif(
    not os.path.isdir(HOST_KVM), reason="tests/fixtures/sysfs/host-kvm (the capture IPA ran on) is absent"
)


def _ipa(name: str):
    with open(os.path.join(IPA, f"host-kvm-{name}.json"), encoding="utf-8") as f:
        return json.load(f)


def _jtype(value) -> str:
    return {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string"}.get(
        type(value), "array" if isinstance(value, list) else "object"
    )


def _inventory() -> dict:
    """A small, complete inventory in Kiln's json format, built by hand."""
    nic = {
        "name": "enp1s0f0",
        "mac_address": "b8:3f:d2:00:00:01",
        "current_mac_address": "b8:3f:d2:00:00:01",
        "ipv4_addresses": ["10.0.0.5", "10.0.0.6"],
        "ipv6_addresses": ["fe80::ba3f:d2ff:fe00:1", "2001:db8::5"],
        "carrier": None,
        "operstate": "down",
        "speed_mbps": 100000,
        "mtu": 9000,
        "driver": "mlx5_core",
        "pci_address": "0000:19:00.0",
        "vendor_id": "0x15b3",
        "device_id": "0x1021",
        "numa_node": 0,
        "sriov_totalvfs": 8,
        "sriov_numvfs": 0,
        "infiniband_guid": None,
        "link_type": "ethernet",
        "is_virtual_function": False,
    }
    disk = {
        "name": "/dev/nvme0n1",
        "kernel_name": "nvme0n1",
        "model": "SAMSUNG MZQL23T8HCLS-00A07",
        "vendor": None,
        "serial": "S64HNE0T123456",
        "wwn": "eui.36344830541234560025384500000001",
        "wwn_with_extension": None,
        "wwn_vendor_extension": None,
        "size": 3840755982336,
        "rotational": False,
        "hctl": None,
        "by_path": "/dev/disk/by-path/pci-0000:1a:00.0-nvme-1",
        "logical_sector_size": 512,
        "physical_sector_size": 4096,
        "transport": "nvme",
        "removable": False,
        "pci_address": "0000:1a:00.0",
        "numa_node": 0,
        "nvme": {"model": "SAMSUNG MZQL23T8HCLS-00A07", "serial": "S64HNE0T123456", "firmware": "GDC5602Q"},
    }
    return {
        "system": {
            "vendor": "Dell Inc.",
            "product": "PowerEdge XE9680",
            "version": None,
            "serial": "7XYZ123",
            "uuid": "4c4c4544-0042-3510-8052-b4c04f4b4e32",
            "sku": "SKU=0ABC;ModelName=PowerEdge XE9680",
            "family": None,
            "board_vendor": "Dell Inc.",
            "board_product": "0ABCDE",
            "chassis_type": 23,
            "firmware": {"vendor": "Dell Inc.", "version": "1.6.5", "date": "03/15/2024"},
            "boot_mode": "uefi",
            "secure_boot": False,
            "pxe_interface": "b8:3f:d2:00:00:01",
            "hostname": "gpu-07",
            "kernel_cmdline": "ro quiet BOOTIF=01-b8-3f-d2-00-00-01 ipa-debug=1",
            "bmc_address": None,
            "bmc_v6address": None,
        },
        "cpu": {
            "model_name": "Intel(R) Xeon(R) Platinum 8480+",
            "architecture": "x86_64",
            "vendor": "GenuineIntel",
            "count": 224,
            "sockets": 2,
            "cores": 112,
            "threads_per_core": 2,
            "frequency_mhz": 3800.0,
            "flags": ["fpu", "avx512f"],
            "numa_nodes": [],
        },
        "memory": {"total_bytes": 2163540955136, "physical_mb": 2097152, "dimms": []},
        "disks": [
            disk,
            dict(disk, name="/dev/sda", kernel_name="sda", size=0, transport="sata", vendor="ATA"),
            dict(disk, name="/dev/sdb", kernel_name="sdb", transport="sata", vendor="ATA", rotational=True),
            dict(disk, name="/dev/vdb", kernel_name="vdb", transport="virtio", vendor="0x1af4"),
        ],
        "nics": [
            nic,
            dict(nic, name="enp1s0f1", mac_address="fa:16:3e:00:00:02"),
            dict(nic, name="enp1s0f2", mac_address=None),
            dict(
                nic,
                name="eth0",
                driver="virtio_net",
                vendor_id="0x1af4",
                device_id="0x1041",
                ipv6_addresses=[],
            ),
        ],
        "gpus": [],
        "nvswitches": [],
        "pci_devices": [
            {
                "address": "0000:18:00.0",
                "vendor_id": "0x10de",
                "device_id": "0x2330",
                "class_code": "0x030200",
                "revision": "0xa1",
                "driver": "nvidia",
                "numa_node": 0,
            },
            {
                "address": "0000:00:00.0",
                "vendor_id": "0x8086",
                "device_id": "0x09a2",
                "class_code": "0x088000",
                "revision": None,
                "driver": None,
                "numa_node": None,
            },
        ],
        "numa_topology": {"ram": [], "cpus": [], "nics": [], "gpus": []},
        "lldp": {"enp1s0f0": [[1, "04b83fd2000001"], [2, "0565746830"]]},
        "errors": [{"path": "/sys/class/dmi/id/product_version", "error": "missing"}],
    }


# -- the captured host: Kiln next to IPA 13 on the same machine ----------------


@needs_host_kvm
def test_host_kvm_has_ipas_keys_and_types_field_by_field():
    ipa = _ipa("list_hardware_info")
    ours = ipa_part(to_ironic(collect(HOST_KVM, use_nvml=False)))
    assert set(ours) == set(ipa)
    for key in ("cpu", "memory", "system_vendor", "boot"):
        assert set(ours[key]) == set(ipa[key]), key
    assert set(ours["system_vendor"]["firmware"]) == set(ipa["system_vendor"]["firmware"])
    for section in ("interfaces", "disks"):
        assert len(ours[section]) == len(ipa[section]), section
        for mine, theirs in zip(ours[section], ipa[section], strict=True):
            assert list(mine) == list(theirs), section  # same fields, in IPA's order
            for field, value in theirs.items():
                if value is not None and mine[field] is not None:
                    assert _jtype(mine[field]) == _jtype(value), f"{section}.{field}"
    for key in ("cpu", "memory", "boot"):
        for field, value in ipa[key].items():
            if value is not None:
                assert _jtype(ours[key][field]) == _jtype(value), f"{key}.{field}"
    assert _jtype(ours["hostname"]) == "string"
    assert ours["bmc_address"] is None and ours["bmc_v6address"] is None


@needs_host_kvm
def test_host_kvm_values_agree_with_ipa():
    ipa = _ipa("list_hardware_info")
    ours = ipa_part(to_ironic(collect(HOST_KVM, use_nvml=False)))
    by_name = {i["name"]: i for i in ours["interfaces"]}
    for theirs in ipa["interfaces"]:
        mine = by_name[theirs["name"]]
        for field in (
            "mac_address",
            "ipv4_address",
            "ipv6_address",
            "has_carrier",
            "vendor",
            "product",
            "driver",
        ):
            assert mine[field] == theirs[field], field
    disks = {d["name"]: d for d in ours["disks"]}
    for theirs in ipa["disks"]:
        mine = disks[theirs["name"]]
        for field in ("size", "rotational", "model", "vendor", "logical_sectors", "physical_sectors", "tran"):
            assert mine[field] == theirs[field], field
    for field in ("model_name", "count", "architecture", "flags", "socket_count"):
        assert ours["cpu"][field] == ipa["cpu"][field], field
    assert abs(ours["memory"]["total"] - ipa["memory"]["total"]) <= ipa["memory"]["total"] // 100
    assert ours["memory"]["physical_mb"] == ipa["memory"]["physical_mb"]
    assert ours["system_vendor"] == ipa["system_vendor"]
    assert ours["boot"] == ipa["boot"]
    assert ours["hostname"] == ipa["hostname"]


@needs_host_kvm
def test_host_kvm_collectors_agree_with_ipa():
    doc = to_ironic(collect(HOST_KVM, use_nvml=False))
    key = lambda d: d["bus"]  # noqa: E731
    assert sorted(doc["pci_devices"], key=key) == sorted(_ipa("pci_devices"), key=key)
    numa = _ipa("numa_topology")
    # A node's MemTotal moves on this VM as the hypervisor plugs memory in (the tree and
    # IPA's run were taken minutes apart): same nodes, sizes within a quarter.
    ours_ram, ipa_ram = doc["numa_topology"]["ram"], numa["ram"]
    assert [r["numa_node"] for r in ours_ram] == [r["numa_node"] for r in ipa_ram]
    for mine, theirs in zip(ours_ram, ipa_ram, strict=True):
        assert abs(mine["size_kb"] - theirs["size_kb"]) <= theirs["size_kb"] // 4
    assert sorted(doc["numa_topology"]["cpus"], key=lambda c: c["cpu"]) == sorted(
        numa["cpus"], key=lambda c: c["cpu"]
    )


def test_ipa_capture_itself_validates_against_the_ironic_schema():
    assert validate_inventory(_ipa("list_hardware_info"), "ironic") == []


# -- constructed trees ------------------------------------------------------


def test_hgx_tree_in_ipa_shape():
    doc = to_ironic(collect(HGX, use_nvml=False))
    assert validate_inventory(doc, "ironic") == []
    assert doc["boot"] == {"current_boot_mode": "uefi", "pxe_interface": "01-a0-88-c2-4e-3f-10"}
    assert doc["system_vendor"]["manufacturer"] == "Supermicro"
    assert doc["system_vendor"]["serial_number"] == "S454857X3A12345"
    assert doc["system_vendor"]["firmware"] == {
        "vendor": "American Megatrends International, LLC.",
        "version": "2.1",
        "build_date": "01/16/2024",
    }
    assert doc["cpu"]["count"] == 224 and doc["cpu"]["socket_count"] == 2
    assert doc["cpu"]["frequency"] == "3800.0000"
    assert doc["memory"]["physical_mb"] == 2097152
    assert doc["memory"]["total"] == 2112832964 * 1024
    macs = {i["name"]: i["mac_address"] for i in doc["interfaces"]}
    assert macs["enp25s0np0"] == "a0:88:c2:4e:3f:10"
    assert len(doc["gpus"]) == 8
    assert {g["pci_address"] for g in doc["gpus"]} >= {"0000:18:00.0", "0000:db:00.0"}
    gpu_pci = [p for p in doc["pci_devices"] if p["bus"] == "0000:18:00.0"]
    assert gpu_pci == [
        {
            "vendor_id": "10de",
            "product_id": "2330",
            "class": "030200",
            "revision": "a1",
            "bus": "0000:18:00.0",
            "numa_node_id": "0",
        }
    ]
    assert from_ironic(doc) == collect(HGX, use_nvml=False)


# -- field rules, on a hand-built inventory ---------------------------------------


def test_top_level_is_ipas_keys_then_ours():
    doc = to_ironic(_inventory())
    assert list(doc) == list(IPA_KEYS) + list(EXTRA_KEYS)
    assert "bmc_mac" not in doc
    assert validate_inventory(doc, "ironic") == []


def test_pxe_interface_is_bootif_verbatim():
    inv = _inventory()
    assert to_ironic(inv)["boot"]["pxe_interface"] == "01-b8-3f-d2-00-00-01"
    inv["system"]["kernel_cmdline"] = "ro quiet"
    inv["system"]["pxe_interface"] = None
    assert to_ironic(inv)["boot"]["pxe_interface"] is None


def test_system_vendor_is_lshw_like():
    inv = _inventory()
    vendor = to_ironic(inv)["system_vendor"]
    assert vendor["product_name"] == "PowerEdge XE9680 (SKU=0ABC;ModelName=PowerEdge XE9680)"
    assert vendor["firmware"]["build_date"] == "03/15/2024"
    inv["system"].update(vendor=None, product=None, serial=None, sku=None)
    inv["system"]["firmware"] = {"vendor": None, "version": None, "date": None}
    assert to_ironic(inv)["system_vendor"] == {
        "product_name": "",
        "serial_number": "",
        "manufacturer": "",
        "firmware": {"vendor": "", "version": "", "build_date": ""},
    }


def test_interfaces_follow_ipa_rules():
    interfaces = to_ironic(_inventory())["interfaces"]
    # 'fa:' MACs and interfaces without a MAC are left out, as IPA does.
    assert [i["name"] for i in interfaces] == ["enp1s0f0", "eth0"]
    first, virtio = interfaces
    assert first["ipv4_address"] == "10.0.0.5"
    assert first["ipv6_address"] == "2001:db8::5"  # the kernel lists global before link-local
    assert first["has_carrier"] is False  # unknown carrier reads as False in IPA
    assert first["vendor"] == "0x15b3" and first["product"] == "0x1021"
    assert first["lldp"] == [[1, "04b83fd2000001"], [2, "0565746830"]]
    assert first["client_id"] is None and first["biosdevname"] is None
    assert first["speed_mbps"] == 100000
    assert virtio["product"] == "0x0001"  # the virtio device id, as IPA reads device/device
    assert virtio["ipv6_address"] is None and virtio["lldp"] is None


def test_link_local_only_gets_the_zone_suffix():
    inv = _inventory()
    inv["nics"] = [dict(inv["nics"][0], ipv6_addresses=["fe80::1"])]
    assert to_ironic(inv)["interfaces"][0]["ipv6_address"] == "fe80::1%enp1s0f0"


def test_disks_follow_ipa_rules():
    disks = to_ironic(_inventory())["disks"]
    assert [d["name"] for d in disks] == ["/dev/nvme0n1", "/dev/sdb", "/dev/vdb"]  # size 0 left out
    nvme, sata, virtio = disks
    assert nvme["vendor"] is None and nvme["tran"] == "nvme"
    assert nvme["size"] == 3840755982336 and nvme["rotational"] is False
    assert nvme["logical_sectors"] == 512 and nvme["physical_sectors"] == 4096
    assert sata["tran"] == "sata" and sata["vendor"] == "ATA" and sata["rotational"] is True
    assert virtio["tran"] is None  # lsblk 2.38 names no transport for virtio


def test_cpu_and_memory_units():
    inv = _inventory()
    doc = to_ironic(inv)
    assert doc["cpu"] == {
        "model_name": "Intel(R) Xeon(R) Platinum 8480+",
        "frequency": "3800.0000",
        "count": 224,
        "architecture": "x86_64",
        "flags": ["fpu", "avx512f"],
        "socket_count": 2,
    }
    assert doc["memory"] == {"total": 2163540955136, "physical_mb": 2097152}
    inv["memory"]["physical_mb"] = None
    inv["cpu"].update(frequency_mhz=None, count=None, sockets=None, model_name=None)
    doc = to_ironic(inv)
    assert doc["memory"]["physical_mb"] == 2015 * 1024  # MemTotal rounded up to whole GiB
    assert doc["cpu"]["frequency"] == "" and doc["cpu"]["count"] == 0 and doc["cpu"]["socket_count"] == 0
    assert doc["cpu"]["model_name"] == ""


def test_pci_devices_in_ipa_collector_shape():
    devices = to_ironic(_inventory())["pci_devices"]
    assert devices[1] == {
        "vendor_id": "8086",
        "product_id": "09a2",
        "class": "088000",
        "revision": None,
        "bus": "0000:00:00.0",
        "numa_node_id": "-1",
    }


def test_nothing_is_lost():
    inv = _inventory()
    doc = to_ironic(copy.deepcopy(inv))
    assert from_ironic(json.loads(json.dumps(doc))) == inv


def test_gpu_health_and_kernel_log_survive_the_round_trip():
    inv = json.loads(json.dumps(collect(HGX, use_nvml=False)))
    doc = to_ironic(copy.deepcopy(inv))
    assert doc["kiln"]["kernel_log"]["xid_count"] == 5
    assert doc["gpus"][6]["health"]["xid_errors"][-1]["xid"] == 79
    assert validate_inventory(doc, "ironic") == []
    assert from_ironic(json.loads(json.dumps(doc))) == inv


def test_an_older_agents_inventory_without_health_still_validates():
    inv = json.loads(json.dumps(collect(HGX, use_nvml=False)))
    del inv["kernel_log"]
    for gpu in inv["gpus"]:
        del gpu["health"]
    assert validate_inventory(inv, "json") == []
    doc = to_ironic(inv)
    assert "kernel_log" not in doc["kiln"] and validate_inventory(doc, "ironic") == []
    assert from_ironic(doc) == inv


def test_from_ironic_refuses_a_plain_ipa_document():
    with pytest.raises(ValueError, match="'kiln' key is missing"):
        from_ironic(_ipa("list_hardware_info"))


def test_empty_inventory_does_not_raise():
    doc = to_ironic({})
    assert doc["interfaces"] == [] and doc["disks"] == []
    assert doc["hostname"] == "" and doc["boot"]["current_boot_mode"] == "bios"
    assert doc["memory"] == {"total": None, "physical_mb": None}
