"""What the multitenant network interface checks before it touches a switch (no switch needed)."""

from __future__ import annotations

import types

import pytest

from agent.common import exception
from agent.common.config import CONF
from agent.conductor.drivers.network import multitenant, switches

CONFIG = """
[network]
provisioning_network = prov

[network:prov]
vlan_id = 100
shared = true

[genericswitch:leaf1]
device_type = netmiko_ovs_linux
ip = 192.0.2.10
ngs_mac_address = 52:54:00:AB:CD:EF
ngs_port_default_vlan = 999

[genericswitch:leaf2]
device_type = netmiko_ovs_linux
ip = 192.0.2.11
"""


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "kiln.conf"
    path.write_text(CONFIG)
    CONF(["--config-file", str(path)], project="kiln")
    yield path
    CONF([], project="kiln")


def _task(llc, driver_info=None):
    port = types.SimpleNamespace(
        uuid="p-1",
        address="52:54:00:00:00:01",
        pxe_enabled=True,
        local_link_connection=llc,
        portgroup_id=None,
    )
    node = types.SimpleNamespace(uuid="n-1", driver_info=driver_info or {}, owner=None, lessee=None)
    return types.SimpleNamespace(node=node, ports=[port], portgroups=[])


def test_a_cabled_port_on_a_declared_switch_validates(conf):
    multitenant.MultitenantNetwork().validate(_task({"switch_id": "52:54:00:ab:cd:ef", "port_id": "e1"}))
    sp = switches.switch_port(_task({"switch_info": "leaf1", "port_id": "e2"}).ports[0])
    assert (sp.switch, sp.port, sp.bond) == ("leaf1", "e2", False)


@pytest.mark.parametrize(
    ("llc", "message"),
    [
        ({}, "Port p-1 (52:54:00:00:00:01) has no local_link_connection port_id"),
        ({"switch_id": "52:54:00:00:00:99", "port_id": "e1"}, "no declared switch matches"),
        ({"switch_info": "leaf2", "port_id": "e1"}, "Switch leaf2 has no ngs_port_default_vlan"),
    ],
)
def test_what_validate_refuses(conf, llc, message):
    with pytest.raises(exception.InvalidParameterValue) as err:
        multitenant.MultitenantNetwork().validate(_task(llc))
    assert message in str(err.value)


def test_an_undeclared_service_network_is_named(conf):
    task = _task({"switch_info": "leaf1", "port_id": "e1"}, {"cleaning_network": "nowhere"})
    with pytest.raises(exception.NetworkNotFound, match=r"Network nowhere is not declared \(known: prov\)"):
        multitenant.MultitenantNetwork().validate(task)
