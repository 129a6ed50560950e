"""kiln-api and kiln-conductor as real processes over RabbitMQ (127.0.0.1:5672) and SQLite or PostgreSQL."""

from __future__ import annotations

import pytest

from tests.functional.api_services import conductor_and_api

# Networks a VIF may name (test_network_cli): one shared service network, two tenants'.
NETWORKS = {
    "conductor": {"enabled_network_interfaces": "noop,flat"},
    "network": {"provisioning_network": "provision"},
    "network:provision": {"vlan_id": 100, "shared": "true"},
    "network:tenant-a": {"vlan_id": 210, "project": "project-a"},
    "network:tenant-b": {"vlan_id": 220, "project": "project-b"},
}


@pytest.fixture(scope="module")
def kiln(tmp_path_factory):
    """Start a conductor and kiln-api; yield the API's base URL."""
    with conductor_and_api(tmp_path_factory.mktemp("kiln"), "func-conductor", NETWORKS) as url:
        yield url
