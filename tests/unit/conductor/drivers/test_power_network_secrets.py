"""driver_info parsing of redfish/ipmi, secret masking (logs and API), flat network, hardware types."""

from __future__ import annotations

import logging

import pytest

from agent.api import base as api_base
from agent.api import views
from agent.common import config, exception, row_dicts, secrets
from agent.conductor.drivers import boot_files, flat, ipmi, ipmi_hardware, redfish, redfish_hardware
from agent.db import api as db_api

INFO = {
    "redfish_address": "10.0.0.5",
    "redfish_username": "admin",
    "redfish_password": "pw-1",
    "ipmi_password": "pw-2",
    "snmp_auth_key": "k-3",
    "api_token": "t-4",
    "nested": {"bmc_password": "pw-5", "port": 623},
    "deploy_kernel": "http://x/k",
    "keyboard": "us",
}


def test_mask_driver_info_hides_every_secret_and_keeps_the_rest() -> None:
    masked = secrets.mask_driver_info(INFO)
    assert masked == {
        "redfish_address": "10.0.0.5",
        "redfish_username": "admin",
        "redfish_password": "******",
        "ipmi_password": "******",
        "snmp_auth_key": "******",
        "api_token": "******",
        "nested": {"bmc_password": "******", "port": 623},
        "deploy_kernel": "http://x/k",
        "keyboard": "us",
    }
    assert INFO["redfish_password"] == "pw-1"  # the original is untouched
    assert secrets.mask_driver_info(None) == {}


def test_mask_text_scrubs_secret_values() -> None:
    assert secrets.mask_text("login pw-1 refused (pw-5)", INFO) == "login ****** refused (******)"


def test_api_node_view_masks_driver_info(make_node) -> None:
    uuid = make_node(driver="fake-hardware", driver_info=INFO)
    node = row_dicts.node_to_dict(db_api.get_node(uuid))
    req = api_base.ApiRequest.blank("/v1/nodes")
    req.version = (1, 80)
    req.context = {"roles": ["admin", "member", "reader"], "system_scope": "all"}  # a system admin
    config.CONF([], project="kiln")  # the policy enforcer reads [oslo_policy] from the parsed config
    shown = views.node_view(req, node)
    assert shown["driver_info"]["redfish_password"] == "******"
    assert shown["driver_info"]["nested"]["bmc_password"] == "******"
    assert shown["driver_info"]["redfish_username"] == "admin"
    assert "pw-1" not in repr(shown)
    # The conductor's own dict keeps the real values (it needs them to reach the BMC).
    assert node["driver_info"]["redfish_password"] == "pw-1"


class _Node:
    def __init__(self, driver_info: dict, uuid: str = "7c9e6679-7425-40de-944b-e07fc1f90ae7") -> None:
        self.uuid = uuid
        self.driver_info = driver_info


@pytest.mark.parametrize(
    "info, error, words",
    [
        ({}, exception.MissingParameterValue, ["redfish_address"]),
        ({"redfish_address": "ftp://bmc"}, exception.InvalidParameterValue, ["redfish_address", "ftp://bmc"]),
        (
            {"redfish_address": "bmc", "redfish_verify_ca": "maybe"},
            exception.InvalidParameterValue,
            ["redfish_verify_ca"],
        ),
        (
            {"redfish_address": "bmc", "redfish_system_id": " "},
            exception.InvalidParameterValue,
            ["redfish_system_id"],
        ),
        (
            {"redfish_address": "bmc", "redfish_password": 5},
            exception.InvalidParameterValue,
            ["redfish_password"],
        ),
    ],
)
def test_redfish_driver_info_errors_name_the_key(info, error, words) -> None:
    with pytest.raises(error) as raised:
        redfish.parse_driver_info(_Node(info))
    for word in words + ["7c9e6679-7425-40de-944b-e07fc1f90ae7"]:
        assert word in str(raised.value)


def test_redfish_driver_info_defaults() -> None:
    parsed = redfish.parse_driver_info(
        _Node({"redfish_address": "10.0.0.5:8443", "redfish_verify_ca": "false"})
    )
    assert parsed == {
        "address": "https://10.0.0.5:8443",
        "root_prefix": "/redfish/v1/",
        "system_id": None,
        "username": None,
        "password": None,
        "verify": False,
    }
    parsed = redfish.parse_driver_info(
        _Node({"redfish_address": "http://bmc", "redfish_verify_ca": "/etc/ca.pem"})
    )
    assert parsed["address"] == "http://bmc" and parsed["verify"] == "/etc/ca.pem"


@pytest.mark.parametrize(
    "info, error, word",
    [
        ({}, exception.MissingParameterValue, "ipmi_address"),
        ({"ipmi_address": "bmc", "ipmi_port": "http"}, exception.InvalidParameterValue, "ipmi_port"),
        ({"ipmi_address": "bmc", "ipmi_port": 70000}, exception.InvalidParameterValue, "ipmi_port"),
        ({"ipmi_address": "bmc", "ipmi_username": ["a"]}, exception.InvalidParameterValue, "ipmi_username"),
        (
            {"ipmi_address": "bmc", "ipmi_cipher_suite": "1"},
            exception.InvalidParameterValue,
            "ipmi_cipher_suite",
        ),
        (
            {"ipmi_address": "bmc", "ipmi_cipher_suite": "x"},
            exception.InvalidParameterValue,
            "use 17 .SHA-256",
        ),
    ],
)
def test_ipmi_driver_info_errors_name_the_key(info, error, word) -> None:
    with pytest.raises(error, match=word):
        ipmi.parse_driver_info(_Node(info))


def test_ipmi_driver_info_defaults() -> None:
    assert ipmi.parse_driver_info(_Node({"ipmi_address": "10.0.0.6"})) == {
        "bmc": "10.0.0.6",
        "port": 623,
        "userid": "",
        "password": "",
        "cipher_suite": 17,
    }
    parsed = ipmi.parse_driver_info(_Node({"ipmi_address": "10.0.0.6", "ipmi_cipher_suite": "3"}))
    assert parsed["cipher_suite"] == 3


def test_sha1_command_sets_what_pyghmi_command_sets() -> None:
    """_Sha1Command builds its own session, so it must set every attribute Command.__init__ sets."""
    import inspect
    import re

    from pyghmi.ipmi import command

    wanted = set(re.findall(r"self\.(\w+) =", inspect.getsource(command.Command.__init__)))
    ours = set(re.findall(r"self\.(\w+) =", inspect.getsource(ipmi._Sha1Command.__init__)))
    assert wanted and wanted <= ours, wanted - ours


def test_unreachable_redfish_bmc_error_has_no_password(make_node, acquire, caplog) -> None:
    node = make_node(
        driver="redfish",
        driver_info={"redfish_address": "http://127.0.0.1:9", "redfish_password": "pw-hidden-8"},
    )
    caplog.set_level(logging.DEBUG)
    with acquire(node) as task:
        with pytest.raises(redfish.RedfishError) as raised:
            task.driver.power.get_power_state(task)
    assert node in str(raised.value) and "http://127.0.0.1:9" in str(raised.value)
    assert "pw-hidden-8" not in str(raised.value)
    assert "pw-hidden-8" not in caplog.text


def test_hardware_types_compose_their_defaults(make_node, acquire) -> None:
    with acquire(make_node(driver="redfish", ports=[("52:54:00:00:00:01", True)])) as task:
        assert isinstance(task.driver.hardware_type, redfish_hardware.RedfishHardware)
        assert task.driver.interface_names == {
            "bios": "no-bios",  # redfish is supported but not enabled by default, as in Ironic
            "firmware": "no-firmware",
            "raid": "no-raid",
            "boot": "ipxe",
            "deploy": "fake",
            "inspect": "fake",
            "management": "redfish",
            "network": "flat",
            "power": "redfish",
        }
    with acquire(make_node(driver="ipmi", boot_interface="pxe", network_interface="noop")) as task:
        assert isinstance(task.driver.hardware_type, ipmi_hardware.IPMIHardware)
        assert task.driver.interface_names["power"] == "ipmi"
        assert task.driver.interface_names["management"] == "ipmi"
        assert task.driver.interface_names["boot"] == "pxe"
        assert task.driver.interface_names["network"] == "noop"


def test_bmc_hardware_types_differ_in_protocol_and_virtual_media() -> None:
    for hw_type, protocol, boot in (
        (ipmi_hardware.IPMIHardware(), "ipmi", ["ipxe", "pxe", "fake"]),
        (redfish_hardware.RedfishHardware(), "redfish", ["ipxe", "pxe", "redfish-virtual-media", "fake"]),
    ):
        assert hw_type.supported_interfaces("power") == [protocol, "fake"]
        assert hw_type.supported_interfaces("management") == [protocol, "fake"]
        assert hw_type.supported_interfaces("boot") == boot  # IPMI has no virtual media
        assert hw_type.supported_interfaces("deploy") == ["direct", "fake"]
        assert hw_type.supported_interfaces("network") == ["flat", "noop", "multitenant", "neutron"]
        assert hw_type.supported_interfaces("inspect") == ["agent", "fake", "no-inspect"]


def test_flat_network_needs_a_pxe_port(make_node, acquire) -> None:
    with acquire(make_node(driver="redfish", ports=[("52:54:00:00:00:02", False)])) as task:
        assert isinstance(task.driver.network, flat.FlatNetwork)
        with pytest.raises(exception.InvalidParameterValue, match="no port with pxe_enabled=True") as raised:
            task.driver.network.add_provisioning_network(task)
        assert task.node.uuid in str(raised.value)
        with pytest.raises(exception.InvalidParameterValue, match="cleaning"):
            task.driver.network.add_cleaning_network(task)
        task.driver.network.configure_tenant_networks(task)  # the same flat network: nothing to do
    with acquire(make_node(driver="redfish", ports=[("52:54:00:00:00:03", True)])) as task:
        task.driver.network.add_provisioning_network(task)
        task.driver.network.validate(task)


@pytest.mark.parametrize(
    "mac",
    [
        "../../etc/passwd",
        "52:54:00:00:00",
        "52:54:00:00:00:0g",
        "52:54-00:00:00:01",
        "",
        None,
        "5254000000 01",
    ],
)
def test_normalize_mac_refuses_anything_but_a_mac(mac) -> None:
    with pytest.raises(exception.InvalidParameterValue, match="is not a MAC address"):
        boot_files.normalize_mac(mac)


def test_normalize_mac_lowercases_and_takes_hyphens() -> None:
    assert boot_files.normalize_mac(" 52-54-00-AA-bb-0C ") == "52:54:00:aa:bb:0c"
    assert boot_files.mac_hexhyp("52:54:00:AA:BB:0C") == "52-54-00-aa-bb-0c"


@pytest.mark.parametrize("relpath", ["../../etc/passwd", "/etc/passwd", "a/../../x", "."])
def test_safe_path_refuses_escapes(tmp_path, relpath) -> None:
    with pytest.raises(exception.InvalidParameterValue, match="Refusing"):
        boot_files.write_file(str(tmp_path / "root"), relpath, "x")
    assert not (tmp_path / "x").exists()


def test_node_uuid_must_be_canonical() -> None:
    with pytest.raises(exception.InvalidParameterValue, match="canonical"):
        boot_files.node_uuid(_Node({}, uuid="../../etc"))
    with pytest.raises(exception.InvalidParameterValue, match="canonical"):
        boot_files.node_uuid(_Node({}, uuid="7C9E6679-7425-40DE-944B-E07FC1F90AE7"))
