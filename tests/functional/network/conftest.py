"""kiln-api and kiln-conductor (RabbitMQ, SQLite) with the multitenant network interface, driving a
real Open vSwitch over SSH through networking-generic-switch's netmiko_ovs_linux driver."""

from __future__ import annotations

import openstack.config
import pytest
from openstack import connection

from tests.functional.api_services import conductor_and_api
from tests.functional.network import ovs_switch

PARKING, PROVISION, CLEANING, TENANT_A, TENANT_B, PUBLIC = 999, 100, 110, 210, 220, 300


@pytest.fixture(scope="module")
def switch(tmp_path_factory):
    """A started OvsSwitch with access ports swp1..swp6; stopped and removed afterwards."""
    why = ovs_switch.available()
    if why:
        pytest.skip(why)
    try:
        import networking_generic_switch  # noqa: F401
    except ImportError:
        pytest.skip("networking-generic-switch is not installed")
    sw = ovs_switch.OvsSwitch(
        tmp_path_factory.mktemp("ovs"), ports=("swp1", "swp2", "swp3", "swp4", "swp5", "swp6")
    ).start()
    yield sw
    sw.stop()


@pytest.fixture(scope="module")
def kiln(switch, tmp_path_factory):
    """Start a conductor (the switch and the networks in its config) and kiln-api; yield the API URL."""
    extra = {
        "conductor": {"enabled_network_interfaces": "noop,multitenant"},
        "network": {"provisioning_network": "provision", "cleaning_network": "cleaning"},
        "network:provision": {"vlan_id": PROVISION, "shared": "true"},
        "network:cleaning": {"vlan_id": CLEANING, "shared": "true"},
        "network:tenant-a": {"vlan_id": TENANT_A, "project": "project-a"},
        "network:tenant-b": {"vlan_id": TENANT_B, "project": "project-b"},
        "network:public": {"vlan_id": PUBLIC, "shared": "true"},
        "genericswitch:sw1": {
            "device_type": "netmiko_ovs_linux",
            "ip": switch.ip,
            "username": "root",
            "key_file": switch.key,
            "use_keys": "true",
            "ngs_mac_address": switch.mac,
            "ngs_port_default_vlan": PARKING,
            "ngs_ssh_connect_timeout": 3,
            "ngs_ssh_connect_interval": 1,
            "ngs_ssh_reuse_connection": "true",
        },
    }
    with conductor_and_api(tmp_path_factory.mktemp("kiln"), "net-conductor", extra) as url:
        yield url


@pytest.fixture(scope="module")
def bm(kiln):
    """openstacksdk's baremetal proxy on kiln-api (auth_type none)."""
    region = openstack.config.get_cloud_region(
        auth_type="none", baremetal_endpoint_override=kiln, load_yaml_config=False, load_envvars=False
    )
    return connection.Connection(config=region).baremetal
