"""Fixtures for the boot, power and network driver tests: a real SQLite database, real task locks."""

from __future__ import annotations

import os

import pytest

from agent.common.config import CONF
from agent.conductor import task_manager
from agent.conductor.drivers import boot_files, driver_factory  # noqa: F401  (registers [pxe], [dnsmasq])
from agent.db import api as db_api
from tests.unit.schema import migrated_db

_OVERRIDES = {
    ("enabled_hardware_types", "conductor"): ["fake-hardware", "redfish", "ipmi"],
    ("enabled_boot_interfaces", "conductor"): ["fake", "ipxe", "pxe"],
    ("enabled_deploy_interfaces", "conductor"): ["fake"],
    ("enabled_management_interfaces", "conductor"): ["fake", "redfish", "ipmi"],
    ("enabled_power_interfaces", "conductor"): ["fake", "redfish", "ipmi"],
    ("enabled_network_interfaces", "conductor"): ["noop", "flat"],
    ("host", "conductor"): "test-conductor",
}


@pytest.fixture
def boot_dirs(tmp_path):
    """[pxe] and [dnsmasq] directories under tmp_path, and the [pxe] image defaults."""
    dirs = {
        "tftp_root": tmp_path / "tftpboot",
        "http_root": tmp_path / "httpboot",
        "hostsdir": tmp_path / "dnsmasq" / "hostsdir",
        "optsdir": tmp_path / "dnsmasq" / "optsdir",
    }
    for path in dirs.values():
        os.makedirs(path)
    overrides = [
        ("tftp_root", str(dirs["tftp_root"]), "pxe"),
        ("http_root", str(dirs["http_root"]), "pxe"),
        ("http_url", "http://10.9.0.1:8088", "pxe"),
        ("deploy_kernel", "http://10.9.0.1:8088/agent.kernel", "pxe"),
        ("deploy_ramdisk", "http://10.9.0.1:8088/agent.initramfs", "pxe"),
        ("agent_config_url", "http://10.9.0.1:8088/agent.conf", "pxe"),
        ("hostsdir", str(dirs["hostsdir"]), "dnsmasq"),
        ("optsdir", str(dirs["optsdir"]), "dnsmasq"),
    ]
    for name, value, group in overrides:
        CONF.set_override(name, value, group=group)
    yield dirs
    for name, _value, group in overrides:
        CONF.clear_override(name, group=group)
    CONF.clear_override("pid_file", group="dnsmasq")


@pytest.fixture
def db(tmp_path):
    """A migrated SQLite database and the conductor options the driver tests need."""
    for (name, group), value in _OVERRIDES.items():
        CONF.set_override(name, value, group=group)
    driver_factory.reset()
    engine = migrated_db(tmp_path)
    yield engine
    db_api.dispose()
    for name, group in _OVERRIDES:
        CONF.clear_override(name, group=group)
    driver_factory.reset()


@pytest.fixture
def make_node(db):
    """Create a node with ports: make_node(driver, driver_info, [(mac, pxe_enabled), ...], **columns)."""

    def make(driver="redfish", driver_info=None, ports=(), **columns):
        node = db_api.create_node({"driver": driver, "driver_info": driver_info or {}, **columns})
        for mac, pxe in ports:
            db_api.create_port({"address": mac, "node_id": node.id, "pxe_enabled": pxe})
        return node.uuid

    return make


@pytest.fixture
def acquire(db):
    """task_manager.acquire for the test's node, exclusive, no retries."""

    def get(uuid):
        return task_manager.acquire({}, uuid, purpose="driver test", retry_attempts=1, retry_interval=0)

    return get
