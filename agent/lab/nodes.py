"""Enroll the lab's VMs in its kiln-api and inspect them (what the README's baremetal commands do)."""

from __future__ import annotations

import time

from agent.lab.state import State


def connection(state: State):
    """An openstacksdk connection to the lab's kiln-api (noauth)."""
    import openstack.config
    from openstack import connection as sdk

    region = openstack.config.get_cloud_region(
        auth_type="none",
        baremetal_endpoint_override=state.info["api_url"],
        load_yaml_config=False,
        load_envvars=False,
    )
    return sdk.Connection(config=region)


def enroll(state: State, node: dict, driver: str = "redfish", boot_interface: str = "ipxe"):
    """Create the node (redfish or ipmi; ipxe boot unless told; agent inspect) and its PXE port; return it
    manageable."""
    conn = connection(state)
    info = state.info
    if driver == "redfish":
        driver_info = {
            "redfish_address": node["redfish_address"],
            "redfish_system_id": node["redfish_system_id"],
            "redfish_username": info["bmc_username"],
            "redfish_password": info["bmc_password"],
        }
    else:
        driver_info = {
            "ipmi_address": node["ipmi_address"],
            "ipmi_port": node["ipmi_port"],
            "ipmi_username": info["bmc_username"],
            "ipmi_password": info["bmc_password"],
        }
    created = conn.baremetal.create_node(
        name=node["name"],
        driver=driver,
        driver_info=driver_info,
        boot_interface=boot_interface,
        inspect_interface="agent",
        deploy_interface="direct",
        network_interface="noop",
    )
    conn.baremetal.create_port(node_id=created.id, address=node["mac"], pxe_enabled=True)
    conn.baremetal.set_node_provision_state(created.id, "manage", wait=True, timeout=120)
    return conn.baremetal.get_node(created.id)


def inspect(state: State, node_id: str) -> None:
    """Start in-band inspection (the conductor powers the VM on into the agent); do not wait."""
    connection(state).baremetal.set_node_provision_state(node_id, "inspect")


def wait_state(state: State, node_id: str, wanted: str, timeout: float) -> dict:
    """Wait for provision state ``wanted``; AssertionError with the node's last_error if it fails."""
    conn = connection(state)
    deadline = time.monotonic() + timeout
    while True:
        node = conn.baremetal.get_node(node_id)
        if node.provision_state == wanted:
            return node.to_dict()
        if node.provision_state and node.provision_state.endswith("failed"):
            raise AssertionError(f"node {node_id} is {node.provision_state}: {node.last_error}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"node {node_id} is {node.provision_state}, not {wanted}, after {timeout:.0f} s; "
                f"see {state.directory}/logs and the VM console"
            )
        time.sleep(1)
