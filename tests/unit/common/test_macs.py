"""agent.common.macs: the one MAC spelling and selection the agent and the conductor share."""

from __future__ import annotations

import pytest

from agent.common import exception, macs


@pytest.mark.parametrize("value", ["52:54:00:00:00", "52:54:00:00:00:0g", "", None, 5, "5254000000 01"])
def test_normalize_mac_refuses_anything_but_a_mac(value) -> None:
    with pytest.raises(exception.InvalidParameterValue, match="Invalid MAC address"):
        macs.normalize_mac(value)


def test_normalize_mac_lowercases_and_takes_hyphens() -> None:
    assert macs.normalize_mac(" 52-54-00-AA-bb-0C\n") == "52:54:00:aa:bb:0c"


def test_valid_macs_drops_garbage_zero_and_broadcast_and_keeps_order() -> None:
    values = ["52:54:00:00:00:02", "x", None, "00:00:00:00:00:00", "FF:FF:FF:FF:FF:FF", "52-54-00-00-00-01"]
    assert macs.valid_macs([*values, "52:54:00:00:00:02"]) == ["52:54:00:00:00:02", "52:54:00:00:00:01"]
    assert macs.valid_macs(None) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("01-52-54-00-aa-bb-0c", "52:54:00:aa:bb:0c"),
        ("52:54:00:AA:BB:0C", "52:54:00:aa:bb:0c"),
        ("02-52-54-00-aa-bb-0c", None),
        ("01-00-00-00-00-00-00", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_bootif(value, expected) -> None:
    assert macs.parse_bootif(value) == expected


def test_device_nics_first_then_every_nic() -> None:
    inventory = {
        "nics": [
            {"name": "eth1", "mac_address": "52:54:00:00:00:02", "pci_address": "0000:01:00.1"},
            {"name": "eth0", "mac_address": "52:54:00:00:00:01", "pci_address": "0000:01:00.0"},
            {
                "name": "vf0",
                "mac_address": "52:54:00:00:00:03",
                "pci_address": "0000:01:10.0",
                "is_virtual_function": True,
            },
            {"name": "br0", "mac_address": "02:42:ac:11:00:01", "pci_address": None},
            None,
        ]
    }
    inventory["nics"][2]["is_virtual_function"] = True
    assert macs.device_nic_macs(inventory) == ["52:54:00:00:00:02", "52:54:00:00:00:01"]
    assert macs.lookup_macs(inventory) == ["52:54:00:00:00:01", "52:54:00:00:00:02"]
    for nic in inventory["nics"][:3]:
        nic["pci_address"] = None
    assert macs.device_nic_macs(inventory) == []
    assert macs.lookup_macs(inventory) == [
        "02:42:ac:11:00:01",
        "52:54:00:00:00:01",
        "52:54:00:00:00:02",
        "52:54:00:00:00:03",
    ]
    assert macs.lookup_macs({}) == []
