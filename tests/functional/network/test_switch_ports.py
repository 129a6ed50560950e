"""Switch ports follow the node's life (multitenant network interface) on a real Open vSwitch."""

from __future__ import annotations

import zlib

from tests.functional.network.conftest import CLEANING, PARKING, PROVISION, PUBLIC, TENANT_A

WAIT = 180


def _node(bm, switch, name: str, ports: dict[str, bool], by_chassis_only: bool = False):
    node = bm.create_node(
        driver="fake-hardware", name=name, network_interface="multitenant", owner="project-a"
    )
    made = {}
    for i, (swp, pxe) in enumerate(ports.items()):
        llc = {"switch_id": switch.mac, "port_id": swp}
        if not by_chassis_only:
            llc["switch_info"] = "sw1"
        made[swp] = bm.create_port(
            address=f"52:54:00:77:{zlib.crc32(name.encode()) & 0xFF:02x}:{i:02x}",
            node_id=node.id, pxe_enabled=pxe,
            local_link_connection=llc,
        )  # fmt: skip
    return node, made


def _available(bm, node):
    node = bm.set_node_provision_state(node, "manage", wait=True, timeout=WAIT)
    return bm.set_node_provision_state(node, "provide", wait=True, timeout=WAIT)


def _port_id(value: str) -> dict:
    return {"op": "replace", "path": "/local_link_connection/port_id", "value": value}


def _wait(bm, node, verb: str, state: str):
    """Ask for ``verb`` and wait for ``state`` (a failure state included); return the node."""
    bm.set_node_provision_state(node, verb)
    return bm.wait_for_nodes_provision_state([node], state, timeout=WAIT, abort_on_failed_state=False)[0]


def _since(history: list, mark: int) -> list:
    return history[mark:]


def test_ports_move_through_the_node_life(bm, switch):
    node, ports = _node(bm, switch, "mt-life", {"swp1": True, "swp2": False}, by_chassis_only=True)
    node = _available(bm, node)
    assert node.provision_state == "available", node.last_error
    # Cleaning ran on the cleaning VLAN, then the ports were parked.
    assert CLEANING in switch.history("swp1")
    assert (switch.tag("swp1"), switch.tag("swp2")) == (PARKING, PARKING)
    assert bm.validate_node(node, required=())["network"].result is True
    bm.attach_vif_to_node(node, "tenant-a")
    assert switch.tag("swp1") == PARKING  # not active: nothing moves yet
    mark = len(switch.history("swp1"))
    node = bm.set_node_provision_state(node, "active", wait=True, timeout=WAIT)
    assert node.provision_state == "active", node.last_error
    # Provisioning VLAN while deploying, then the tenant's VLAN; the port without a VIF is parked.
    assert _since(switch.history("swp1"), mark) == [PROVISION, PARKING, TENANT_A]
    assert (switch.tag("swp1"), switch.tag("swp2")) == (TENANT_A, PARKING)
    # VIFs on an active node move its ports at once.
    bm.attach_vif_to_node(node, "public")
    assert switch.tag("swp2") == PUBLIC
    bm.detach_vif_from_node(node, "public")
    assert switch.tag("swp2") == PARKING
    mark = len(switch.history("swp1"))
    node = bm.set_node_provision_state(node, "deleted", wait=True, timeout=WAIT)
    assert node.provision_state == "available", node.last_error
    assert _since(switch.history("swp1"), mark) == [PARKING, CLEANING, PARKING]
    assert (switch.tag("swp1"), switch.tag("swp2")) == (PARKING, PARKING)


def test_refused_and_unreachable_switch_fail_deploy_and_undeploy(bm, switch):
    node, ports = _node(bm, switch, "mt-fail", {"swp3": True})
    node = _available(bm, node)
    bm.attach_vif_to_node(node, "tenant-a")
    # The switch refuses: it has no such port.
    bm.patch_port(ports["swp3"], [_port_id("swp9")])
    node = _wait(bm, node, "active", "deploy failed")
    assert "Switch sw1 port swp9" in node.last_error
    assert 'no row "swp9"' in node.last_error
    # Fixed, a retry converges.
    bm.patch_port(ports["swp3"], [_port_id("swp3")])
    node = _wait(bm, node, "active", "active")
    assert node.last_error is None
    assert switch.tag("swp3") == TENANT_A
    # The switch is lost: undeploy fails naming switch and port, and the node is not left active.
    switch.stop_sshd()
    try:
        node = _wait(bm, node, "deleted", "error")
        assert "Switch sw1 port swp3" in node.last_error
        assert "cannot reach the switch" in node.last_error
    finally:
        switch.restart_sshd()
    node = _wait(bm, node, "deleted", "available")
    assert switch.tag("swp3") == PARKING
    # Lost while deploying: the deploy fails and the node never goes active on the tenant VLAN.
    switch.stop_sshd()
    try:
        node = _wait(bm, node, "active", "deploy failed")
        assert "Switch sw1 port swp3" in node.last_error
    finally:
        switch.restart_sshd()
    assert switch.tag("swp3") != TENANT_A


def test_switch_lost_during_cleaning_leaves_clean_failed(bm, switch):
    node, _ = _node(bm, switch, "mt-clean", {"swp4": True})
    node = _wait(bm, node, "manage", "manageable")
    switch.stop_sshd()
    try:
        node = _wait(bm, node, "provide", "clean failed")
        assert "Switch sw1 port swp4" in node.last_error
    finally:
        switch.restart_sshd()
    assert switch.tag("swp4") not in (TENANT_A, PUBLIC)


def test_a_bonded_portgroup_moves_as_one(bm, switch):
    node, ports = _node(bm, switch, "mt-bond", {"swp5": True, "swp6": True})
    group = bm.create_port_group(node_id=node.id, name="mt-bond0", mode="802.3ad", properties={"miimon": 100})
    for port in ports.values():
        bm.patch_port(port, [{"op": "add", "path": "/portgroup_uuid", "value": group.id}])
    node = _available(bm, node)
    bm.attach_vif_to_node(node, "tenant-a")
    assert bm.get_port_group(group.id).internal_info == {"tenant_vif_port_id": "tenant-a"}
    node = _wait(bm, node, "active", "active")
    assert (switch.tag("swp5"), switch.tag("swp6")) == (TENANT_A, TENANT_A)
    node = _wait(bm, node, "deleted", "available")
    assert (switch.tag("swp5"), switch.tag("swp6")) == (PARKING, PARKING)
