"""The ``neutron`` network interface against a real neutron-server (ML2 + networking-generic-switch)
that moves a real Open vSwitch's ports over SSH: the node's switch port follows its life."""

from __future__ import annotations

import openstack.config
import pytest
from openstack import connection

from tests.functional.api_services import conductor_and_api
from tests.functional.network import neutron_server

PARKING, PROVISION, CLEANING, TENANT = 999, 101, 102, 150
WAIT = 180


@pytest.fixture(scope="module")
def neutron(switch, tmp_path_factory):
    """neutron's API with the switch declared for networking-generic-switch; stopped and dropped after."""
    why = neutron_server.available()
    if why:
        pytest.skip(why)
    sw1 = {
        "device_type": "netmiko_ovs_linux",
        "ip": switch.ip,
        "username": "root",
        "key_file": switch.key,
        "use_keys": "true",
        "ngs_mac_address": switch.mac,
        "ngs_port_default_vlan": PARKING,
        "ngs_ssh_connect_timeout": 3,
        "ngs_ssh_connect_interval": 1,
    }
    server = neutron_server.NeutronServer(
        tmp_path_factory.mktemp("neutron"), {"sw1": sw1}, (100, 199)
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def net(neutron):
    """openstacksdk's network proxy on that neutron (auth_type none)."""
    region = openstack.config.get_cloud_region(
        auth_type="none", network_endpoint_override=neutron.url, load_yaml_config=False, load_envvars=False
    )
    return connection.Connection(config=region).network


@pytest.fixture(scope="module")
def networks(net):
    """The provisioning, cleaning and a tenant's network: VLANs on physnet1."""
    made = {}
    for name, vlan in (("provision", PROVISION), ("cleaning", CLEANING), ("tenant-a", TENANT)):
        made[name] = net.create_network(
            name=name,
            provider_network_type="vlan",
            provider_physical_network=neutron_server.PHYSNET,
            provider_segmentation_id=vlan,
        )
    return made


@pytest.fixture(scope="module")
def bm(neutron, networks, tmp_path_factory):
    """A conductor with the neutron network interface and kiln-api; openstacksdk's baremetal proxy."""
    extra = {
        "conductor": {"enabled_network_interfaces": "noop,neutron"},
        "neutron": {
            "url": neutron.url,
            "auth_type": "none",
            "timeout": 10,
            "provisioning_network": "provision",
            "cleaning_network": networks["cleaning"].id,
            "port_active_timeout": 60,
        },
    }
    with conductor_and_api(tmp_path_factory.mktemp("kiln"), "neutron-conductor", extra) as url:
        region = openstack.config.get_cloud_region(
            auth_type="none", baremetal_endpoint_override=url, load_yaml_config=False, load_envvars=False
        )
        yield connection.Connection(config=region).baremetal


def _node(bm, switch, name: str, swp: str, mac: str, second: tuple[str, str] | None = None):
    """A fake-hardware node with a PXE port cabled to ``swp`` (and a non-PXE one, ``second``)."""
    node = bm.create_node(driver="fake-hardware", name=name, network_interface="neutron")
    for port_id, address, pxe in ((swp, mac, True), *([(*second, False)] if second else [])):
        bm.create_port(
            address=address, node_id=node.id, pxe_enabled=pxe,
            local_link_connection={"switch_id": switch.mac, "port_id": port_id, "switch_info": "sw1"},
        )  # fmt: skip
    return node


def _wait(bm, node, verb: str, state: str):
    """Ask for ``verb`` and wait for ``state`` (a failure state included); return the node."""
    bm.set_node_provision_state(node, verb)
    return bm.wait_for_nodes_provision_state([node], state, timeout=WAIT, abort_on_failed_state=False)[0]


def _kiln_ports(net, node) -> list:
    return list(net.ports(device_id=node.id))


def test_switch_port_follows_the_node_through_neutron(bm, net, networks, switch):
    node = _node(bm, switch, "nt-life", "swp1", "52:54:00:88:00:01", second=("swp2", "52:54:00:88:01:01"))
    node = _wait(bm, node, "manage", "manageable")
    assert bm.validate_node(node, required=())["network"].result is True
    node = _wait(bm, node, "provide", "available")
    assert node.last_error is None
    # Cleaning bound a port on the cleaning network (its VLAN reached the switch), then deleted it.
    assert switch.history("swp1") == [CLEANING, PARKING]
    assert switch.tag("swp1") == PARKING
    assert _kiln_ports(net, node) == []

    vif = net.create_port(network_id=networks["tenant-a"].id, name="nt-life-vif")
    bm.attach_vif_to_node(node, vif.id)
    assert bm.list_node_vifs(node) == [vif.id]
    assert switch.tag("swp1") == PARKING  # not active: nothing moves yet
    # Neutron's policy, not Kiln's declared networks, governs its ports: a new owner is no conflict.
    assert bm.update_node(node, owner="project-b").owner == "project-b"
    mark = len(switch.history("swp1"))
    node = _wait(bm, node, "active", "active")
    assert node.last_error is None
    # Provisioning VLAN while deploying, parked in between, then the tenant's VLAN.
    assert switch.history("swp1")[mark:] == [PROVISION, PARKING, TENANT]
    assert switch.tag("swp1") == TENANT
    bound = net.get_port(vif.id)
    assert (bound.binding_host_id, bound.binding_vnic_type, bound.status) == (node.id, "baremetal", "ACTIVE")
    assert bound.mac_address == "52:54:00:88:00:01"
    assert bound.binding_profile["local_link_information"] == [
        {"switch_id": switch.mac, "port_id": "swp1", "switch_info": "sw1"}
    ]
    assert _kiln_ports(net, node) == []  # the provisioning port is gone
    assert switch.tag("swp2") is None  # not PXE-enabled, no VIF: never touched

    # A VIF attached to an active node is bound at once (on the free port), and unbound on detach.
    extra = net.create_port(network_id=networks["tenant-a"].id, name="nt-life-extra")
    bm.attach_vif_to_node(node, extra.id)
    assert switch.tag("swp2") == TENANT
    assert net.get_port(extra.id).mac_address == "52:54:00:88:01:01"
    bm.detach_vif_from_node(node, extra.id)
    assert switch.tag("swp2") == PARKING
    assert net.get_port(extra.id).binding_host_id in ("", None)

    mark = len(switch.history("swp1"))
    node = _wait(bm, node, "deleted", "available")
    assert node.last_error is None
    # Unbound (parked), cleaned on the cleaning VLAN, parked again.
    assert switch.history("swp1")[mark:] == [PARKING, CLEANING, PARKING]
    assert switch.tag("swp1") == PARKING
    assert net.get_port(vif.id).binding_host_id in ("", None)


def test_a_vif_that_is_no_neutron_port_is_refused(bm, switch):
    node = _node(bm, switch, "nt-novif", "swp4", "52:54:00:88:00:02")
    with pytest.raises(Exception, match="is no port in Neutron at http://127.0.0.1"):
        bm.attach_vif_to_node(node, "5d1b8b8a-0000-4000-8000-000000000000")
    assert list(bm.list_node_vifs(node)) == []


def test_neutron_unreachable_fails_cleaning_naming_its_url(bm, neutron, switch):
    node = _node(bm, switch, "nt-down", "swp3", "52:54:00:88:00:03")
    node = _wait(bm, node, "manage", "manageable")
    neutron.stop_api()
    try:
        node = _wait(bm, node, "provide", "clean failed")
        assert f"Neutron at {neutron.url}" in node.last_error
        assert switch.tag("swp3") is None  # never configured
    finally:
        neutron.start_api()
    # Neutron back: a retry converges.
    node = _wait(bm, node, "manage", "manageable")
    node = _wait(bm, node, "provide", "available")
    assert switch.history("swp3") == [CLEANING, PARKING]
