"""How nodes, ports, portgroups and allocations look in the API at a given microversion (Ironic's fields)."""

from __future__ import annotations

from typing import Any

from agent.api import base, errors, policy
from agent.common import secrets

# Node field -> minor version that introduced it.
NODE_FIELDS: dict[str, int] = {
    "uuid": 1,
    "driver": 1,
    "driver_info": 1,
    "extra": 1,
    "instance_info": 1,
    "instance_uuid": 1,
    "chassis_uuid": 1,
    "properties": 1,
    "power_state": 1,
    "target_power_state": 1,
    "provision_state": 1,
    "target_provision_state": 1,
    "provision_updated_at": 1,
    "maintenance": 1,
    "maintenance_reason": 1,
    "last_error": 1,
    "console_enabled": 1,
    "reservation": 1,
    "created_at": 1,
    "updated_at": 1,
    "links": 1,
    "ports": 1,
    "driver_internal_info": 3,
    "name": 5,
    "inspection_started_at": 6,
    "inspection_finished_at": 6,
    "clean_step": 7,
    "raid_config": 12,
    "target_raid_config": 12,
    "states": 14,
    "network_interface": 20,
    "resource_class": 21,
    "portgroups": 24,
    "boot_interface": 31,
    "console_interface": 31,
    "deploy_interface": 31,
    "inspect_interface": 31,
    "management_interface": 31,
    "power_interface": 31,
    "raid_interface": 31,
    "vendor_interface": 31,
    "volume": 32,
    "storage_interface": 33,
    "traits": 37,
    "rescue_interface": 38,
    "bios_interface": 40,
    "fault": 42,
    "deploy_step": 44,
    "conductor_group": 46,
    "automated_clean": 47,
    "protected": 48,
    "protected_reason": 48,
    "conductor": 49,
    "owner": 50,
    "description": 51,
    "allocation_uuid": 52,
    "retired": 61,
    "retired_reason": 61,
    "lessee": 65,
    "network_data": 66,
    "boot_mode": 75,
    "secure_boot": 75,
    "shard": 82,
    "firmware_interface": 86,
    "service_step": 87,
    "instance_name": 104,
    "health": 109,
}

NODE_LIST_FIELDS = ("uuid", "instance_uuid", "maintenance", "power_state", "provision_state", "name")

PORT_FIELDS: dict[str, int] = {
    "uuid": 1,
    "address": 1,
    "node_uuid": 1,
    "extra": 1,
    "created_at": 1,
    "updated_at": 1,
    "links": 1,
    "internal_info": 18,
    "local_link_connection": 19,
    "pxe_enabled": 19,
    "portgroup_uuid": 24,
    "physical_network": 34,
    "is_smartnic": 53,
}

PORT_LIST_FIELDS = ("uuid", "address")

PORTGROUP_FIELDS: dict[str, int] = {
    "uuid": 23,
    "address": 23,
    "name": 23,
    "node_uuid": 23,
    "standalone_ports_supported": 23,
    "internal_info": 23,
    "extra": 23,
    "created_at": 23,
    "updated_at": 23,
    "links": 23,
    "ports": 24,
    "mode": 26,
    "properties": 26,
}

PORTGROUP_LIST_FIELDS = ("uuid", "address", "name")

ALLOCATION_FIELDS: dict[str, int] = {
    "uuid": 52,
    "name": 52,
    "node_uuid": 52,
    "state": 52,
    "last_error": 52,
    "resource_class": 52,
    "candidate_nodes": 52,
    "traits": 52,
    "extra": 52,
    "created_at": 52,
    "updated_at": 52,
    "links": 52,
    "owner": 60,
}

NODE_STATES_FIELDS: dict[str, int] = {
    "console_enabled": 1,
    "last_error": 1,
    "power_state": 1,
    "provision_state": 1,
    "provision_updated_at": 1,
    "target_power_state": 1,
    "target_provision_state": 1,
    "raid_config": 12,
    "target_raid_config": 12,
    "boot_mode": 75,
    "secure_boot": 75,
}

# driver_internal_info keys never shown (secrets the conductor keeps for itself).
_HIDDEN_INTERNAL = ("agent_secret_token", "agent_token")


def visible(table: dict[str, int], req: base.ApiRequest) -> set[str]:
    """Names of the fields of ``table`` that exist at the request's version (cached per request)."""
    cache = req.environ.setdefault("kiln.visible_fields", {})
    found = cache.get(id(table))
    if found is None:
        found = cache[id(table)] = {name for name, minor in table.items() if req.at_least(minor)}
    return found


def _select(full: dict[str, Any], allowed: set[str], fields: list[str] | tuple[str, ...] | None) -> dict:
    if fields is None:
        return {k: v for k, v in full.items() if k in allowed}
    wanted = set(fields) | {"links"}
    return {k: v for k, v in full.items() if k in wanted and k in allowed}


select_fields = _select


def node_view(
    req: base.ApiRequest,
    node: dict[str, Any],
    fields: list[str] | tuple[str, ...] | None = None,
    *,
    allocation_uuid: str | None = None,
    conductor: str | None = None,
) -> dict[str, Any]:
    """Return the API representation of ``node`` (a node_to_dict) at the request's version."""
    uuid = node["uuid"]
    internal = dict(node.get("driver_internal_info") or {})
    for key in _HIDDEN_INTERNAL:
        internal.pop(key, None)
    full = {k: node.get(k) for k in NODE_FIELDS if k in node}
    full.update(
        driver_internal_info=internal,
        chassis_uuid=node.get("chassis_uuid"),
        clean_step=internal.get("clean_step") or {},
        deploy_step=internal.get("deploy_step") or {},
        service_step=internal.get("service_step") or {},
        raid_config=node.get("raid_config") or {},
        target_raid_config=node.get("target_raid_config") or {},
        network_data=(node.get("instance_info") or {}).get("network_data") or {},
        boot_mode=internal.get("boot_mode"),
        secure_boot=internal.get("secure_boot"),
        allocation_uuid=allocation_uuid,
        conductor=conductor,
        firmware_interface=node.get("firmware_interface") or "no-firmware",
        properties=node.get("properties") or {},
        extra=node.get("extra") or {},
        instance_info=secrets.mask_driver_info(node.get("instance_info")),
        driver_info=policy.driver_info_view(req, node),
        traits=list(node.get("traits") or []),
        links=base.links(req, "nodes", uuid),
        ports=base.links(req, "nodes", uuid, "/ports"),
        states=base.links(req, "nodes", uuid, "/states"),
        portgroups=base.links(req, "nodes", uuid, "/portgroups"),
        volume=base.links(req, "nodes", uuid, "/volume"),
    )
    return _select(policy.sanitize_node(req, node, full), visible(NODE_FIELDS, req), fields)


def node_states_view(req: base.ApiRequest, node: dict[str, Any]) -> dict[str, Any]:
    """Return GET /v1/nodes/{node}/states at the request's version."""
    internal = node.get("driver_internal_info") or {}
    full = {k: node.get(k) for k in NODE_STATES_FIELDS}
    full.update(
        raid_config=node.get("raid_config") or {},
        target_raid_config=node.get("target_raid_config") or {},
        boot_mode=internal.get("boot_mode"),
        secure_boot=internal.get("secure_boot"),
    )
    return _select(full, visible(NODE_STATES_FIELDS, req), None)


def port_view(
    req: base.ApiRequest,
    port: dict[str, Any],
    node_uuid: str | None,
    fields: list[str] | tuple[str, ...] | None = None,
    portgroup_uuid: str | None = None,
) -> dict[str, Any]:
    """Return the API representation of ``port`` (a port_to_dict) at the request's version."""
    full = {k: port.get(k) for k in PORT_FIELDS if k in port}
    full.update(
        node_uuid=node_uuid,
        extra=port.get("extra") or {},
        local_link_connection=port.get("local_link_connection") or {},
        internal_info=port.get("internal_info") or {},
        portgroup_uuid=portgroup_uuid,
        links=base.links(req, "ports", port["uuid"]),
    )
    return _select(full, visible(PORT_FIELDS, req), fields)


def portgroup_view(
    req: base.ApiRequest,
    portgroup: dict[str, Any],
    node_uuid: str | None,
    fields: list[str] | tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Return the API representation of ``portgroup`` (a portgroup_to_dict) at the request's version."""
    full = {k: portgroup.get(k) for k in PORTGROUP_FIELDS if k in portgroup}
    full.update(
        node_uuid=node_uuid,
        extra=portgroup.get("extra") or {},
        internal_info=portgroup.get("internal_info") or {},
        properties=portgroup.get("properties") or {},
        links=base.links(req, "portgroups", portgroup["uuid"]),
        ports=base.links(req, "portgroups", portgroup["uuid"], "/ports"),
    )
    return _select(full, visible(PORTGROUP_FIELDS, req), fields)


def allocation_view(
    req: base.ApiRequest,
    alloc: dict[str, Any],
    node_uuid: str | None,
    fields: list[str] | tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Return the API representation of ``alloc`` (an allocation_to_dict) at the request's version."""
    full = {k: alloc.get(k) for k in ALLOCATION_FIELDS if k in alloc}
    full.update(
        node_uuid=node_uuid,
        extra=alloc.get("extra") or {},
        traits=list(alloc.get("traits") or []),
        candidate_nodes=list(alloc.get("candidate_nodes") or []),
        links=base.links(req, "allocations", alloc["uuid"]),
    )
    return _select(full, visible(ALLOCATION_FIELDS, req), fields)


def list_fields(req: base.ApiRequest, detail: bool, table: dict[str, int], listed) -> list[str] | None:
    """The fields a list shows: fields=, else every field with detail, else ``listed``."""
    if detail and "fields" in req.GET:
        raise errors.HTTPBadRequest("Can not specify ?detail=True and fields in the same request.")
    fields = check_fields(req, table)
    if fields is None and not detail:
        fields = list(listed)
    return fields


def check_fields(req: base.ApiRequest, table: dict[str, int]) -> list[str] | None:
    """Return fields= for a resource; 406 for a field newer than the version, 400 for an unknown one."""
    fields = base.parse_fields(req, set(table))
    if fields is None:
        return None
    too_new = [f for f in fields if not req.at_least(table[f])]
    if too_new:
        raise errors.HTTPNotAcceptable(
            f'Field(s) "{", ".join(too_new)}" need a newer API version than '
            f"1.{req.version[1]}; request a version that has them."
        )
    return fields
