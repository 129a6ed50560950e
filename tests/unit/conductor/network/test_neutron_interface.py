"""What the neutron network interface checks and says before and when Neutron answers nothing."""

from __future__ import annotations

import socket
import types

import pytest

from agent.common import exception
from agent.common.config import CONF
from agent.conductor.drivers.network import neutron


@pytest.fixture
def conf(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "kiln.conf"
    path.write_text(
        f"[neutron]\nurl = http://127.0.0.1:{port}\nauth_type = none\ntimeout = 5\n"
        "provisioning_network = prov\ncleaning_network = clean\n"
    )
    CONF(["--config-file", str(path)], project="kiln")
    yield f"http://127.0.0.1:{port}"
    CONF([], project="kiln")


def _task(llc, driver_info=None, pxe=True):
    port = types.SimpleNamespace(
        uuid="p-1", address="52:54:00:00:00:01", pxe_enabled=pxe, local_link_connection=llc,
        portgroup_id=None, internal_info={},
    )  # fmt: skip
    node = types.SimpleNamespace(uuid="n-1", driver_info=driver_info or {}, owner=None, lessee=None)
    return types.SimpleNamespace(node=node, ports=[port], portgroups=[])


def test_service_networks_come_from_driver_info_then_config_then_provisioning(conf):
    node = _task({}).node
    assert neutron.service_network_ref(node, "provisioning_network") == "prov"
    assert neutron.service_network_ref(node, "cleaning_network") == "clean"
    assert neutron.service_network_ref(node, "rescuing_network") == "prov"
    node.driver_info = {"rescuing_network": "r-net", "provisioning_network": "p-net"}
    assert neutron.service_network_ref(node, "rescuing_network") == "r-net"
    assert neutron.service_network_ref(node, "inspection_network") == "p-net"
    assert neutron.service_network_ref(node, "cleaning_network") == "clean"


def test_the_binding_carries_the_lldp_facts_and_the_bond():
    node = types.SimpleNamespace(uuid="n-1")
    group = types.SimpleNamespace(uuid="g-1", name="bond0", mode="802.3ad", properties={"miimon": 100})
    links = [{"switch_id": "52:54:00:ab:cd:ef", "port_id": "e1"}]
    binding = neutron._binding(node, links, "52:54:00:00:00:01", group)
    assert binding["binding_host_id"] == "n-1"
    assert binding["binding_vnic_type"] == "baremetal"
    assert binding["binding_profile"]["local_link_information"] == links
    assert binding["binding_profile"]["local_group_information"]["bond_mode"] == "802.3ad"


def test_a_pxe_port_without_lldp_facts_is_refused_before_neutron_is_asked(conf):
    with pytest.raises(exception.InvalidParameterValue, match="p-1 .* has no local_link_connection port_id"):
        neutron.NeutronNetwork().validate(_task({"switch_id": "52:54:00:ab:cd:ef"}))
    with pytest.raises(exception.InvalidParameterValue, match="no port with pxe_enabled"):
        neutron.NeutronNetwork().add_cleaning_network(_task({}, pxe=False))
    with pytest.raises(exception.InvalidParameterValue, match="has no local_link_connection port_id"):
        neutron.NeutronNetwork().add_cleaning_network(_task({}))


def test_inspection_leaves_ports_without_lldp_facts_and_still_asks_neutron(conf):
    with pytest.raises(exception.NeutronError, match="inspection_network"):
        neutron.NeutronNetwork().add_inspection_network(_task({}))


def test_an_unreachable_neutron_is_named_by_its_url(conf):
    task = _task({"switch_id": "52:54:00:ab:cd:ef", "port_id": "e1"})
    with pytest.raises(exception.NeutronError) as caught:
        neutron.NeutronNetwork().add_cleaning_network(task)
    assert str(caught.value).startswith(f"Neutron at {conf}: putting node n-1 on its cleaning_network failed")


def test_no_url_and_no_auth_type_is_a_config_error(tmp_path):
    path = tmp_path / "kiln.conf"
    path.write_text("[neutron]\nprovisioning_network = prov\n")
    CONF(["--config-file", str(path)], project="kiln")
    try:
        with pytest.raises(exception.InvalidParameterValue, match=r"\[neutron\] has neither auth_type"):
            neutron.NeutronNetwork().unconfigure_tenant_networks(_task({}))
    finally:
        CONF([], project="kiln")
