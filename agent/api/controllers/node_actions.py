"""Per-node actions: states (provision, power), maintenance, traits, boot device, validate, inventory."""

from __future__ import annotations

from typing import Any

import webob

from agent.api import base, dbread, errors, policy, validation, versions, views
from agent.api.controllers import runbooks
from agent.api.router import Router
from agent.common import row_dicts, states
from agent.common.steps import check_steps
from agent.db import api as db_api
from agent.db import history as db_history
from agent.inventory import ironic as ironic_format
from agent.inventory import plugin_data as plugin_data_mod

# Provision targets -> the minor version that introduced each (Ironic's).
PROVISION_TARGETS: dict[str, int] = {
    "active": 1,
    "deleted": 1,
    "rebuild": 1,
    "manage": 4,
    "provide": 4,
    "inspect": 6,
    "abort": versions.ABORT,
    "clean": versions.MANUAL_CLEAN,
    "adopt": versions.ADOPT,
    "rescue": versions.RESCUE,
    "unrescue": versions.RESCUE,
    "deploy": versions.DEPLOY_VERBS,
    "undeploy": versions.DEPLOY_VERBS,
    "unhold": versions.UNHOLD,
    "service": versions.SERVICE,
}
_PROVISION_BODY = {
    "target",
    "configdrive",
    "clean_steps",
    "deploy_steps",
    "service_steps",
    "rescue_password",
    "disable_ramdisk",
    "runbook",
}
_SOFT_POWER = (states.SOFT_REBOOT, states.SOFT_POWER_OFF)
_POWER_TARGETS = (states.POWER_ON, states.POWER_OFF, states.REBOOT, *_SOFT_POWER)


def _states_location(req: base.ApiRequest, node: Any) -> dict[str, str]:
    return {"Location": base.links(req, "nodes", node.uuid, "/states")[0]["href"]}


def get_states(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/states."""
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:get_states", node)
    return base.json_response(views.node_states_view(req, row_dicts.node_to_dict(node)))


def _check_provision_body(req: base.ApiRequest, body: dict, node: Any) -> dict[str, Any]:
    unknown = sorted(set(body) - _PROVISION_BODY)
    if unknown:
        raise errors.HTTPBadRequest(
            f"Unknown field(s) in the provision request: {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(_PROVISION_BODY))}."
        )
    target = body.get("target")
    if not isinstance(target, str) or not target:
        raise errors.HTTPBadRequest('The provision request needs "target", e.g. {"target": "provide"}.')
    minor = PROVISION_TARGETS.get(target)
    if minor is None:
        raise errors.HTTPBadRequest(
            f'The requested action "{target}" can not be performed on node "{node.uuid}" while it is in '
            f'state "{node.provision_state}": it is not a known target; use one of '
            f"{', '.join(sorted(PROVISION_TARGETS))}."
        )
    base.feature_version(req, minor, f'The provision target "{target}"')
    args: dict[str, Any] = {}
    configdrive = body.get("configdrive")
    if configdrive is not None:
        if target not in ("active", "rebuild", "deploy"):
            raise errors.HTTPBadRequest(
                f'Adding a config drive is only supported when deploying, not for "{target}".'
            )
        if target == "rebuild":
            base.feature_version(req, versions.REBUILD_CONFIGDRIVE, "A configdrive with rebuild")
        if isinstance(configdrive, dict):
            base.feature_version(req, versions.CONFIGDRIVE_DICT, "A configdrive given as a JSON object")
            unknown_cd = sorted(set(configdrive) - {"meta_data", "network_data", "user_data", "vendor_data"})
            if unknown_cd:
                raise errors.HTTPBadRequest(f"Unknown configdrive key(s): {', '.join(unknown_cd)}.")
        elif not isinstance(configdrive, str):
            raise errors.HTTPBadRequest(
                "configdrive must be a string (gzipped, base64 ISO or URL) or a JSON object."
            )
        args["configdrive"] = configdrive
    clean_steps = body.get("clean_steps")
    service_steps = body.get("service_steps")
    if body.get("runbook") is not None:
        if clean_steps is not None or service_steps is not None:
            raise errors.HTTPBadRequest('Give either "runbook" or "clean_steps"/"service_steps", not both.')
        steps, disable = runbooks.steps_for_node(req, body["runbook"], node, target)
        if target == "service":
            service_steps = steps
        else:
            clean_steps = steps
        if disable is not None and "disable_ramdisk" not in body:
            body = {**body, "disable_ramdisk": disable}
    if target == "service" and service_steps is None:
        raise errors.HTTPBadRequest(
            '"service_steps" (or "runbook") is required when setting target provision state to "service".'
        )
    if service_steps is not None:
        if target != "service":
            raise errors.HTTPBadRequest(
                '"service_steps" is only valid when setting target provision state to "service".'
            )
        args["service_steps"] = check_steps(service_steps, "service_steps", node.uuid)
    if target == "clean" and clean_steps is None:
        raise errors.HTTPBadRequest(
            '"clean_steps" is required when setting target provision state to "clean".'
        )
    if clean_steps is not None:
        if target != "clean":
            raise errors.HTTPBadRequest(
                '"clean_steps" is only valid when setting target provision state to "clean".'
            )
        args["clean_steps"] = check_steps(clean_steps, "clean_steps", node.uuid)
    deploy_steps = body.get("deploy_steps")
    if deploy_steps is not None:
        base.feature_version(req, versions.DEPLOY_STEPS, "deploy_steps")
        if target not in ("active", "rebuild", "deploy"):
            raise errors.HTTPBadRequest('"deploy_steps" is only valid when deploying or rebuilding.')
        args["deploy_steps"] = check_steps(deploy_steps, "deploy_steps", node.uuid)
    rescue_password = body.get("rescue_password")
    if target == "rescue" and not rescue_password:
        raise errors.HTTPBadRequest(
            '"rescue_password" is required when setting target provision state to "rescue".'
        )
    if rescue_password is not None:
        if target != "rescue":
            raise errors.HTTPBadRequest('"rescue_password" is only valid with target "rescue".')
        args["rescue_password"] = validation.check_value(
            "Provision request", "rescue_password", "string", rescue_password
        )
    if "disable_ramdisk" in body:
        base.feature_version(req, versions.DISABLE_RAMDISK, "disable_ramdisk")
        if target not in ("clean", "service"):
            raise errors.HTTPBadRequest('"disable_ramdisk" is only valid with targets "clean" and "service".')
        args["disable_ramdisk"] = validation.check_value(
            "Provision request", "disable_ramdisk", "bool", body["disable_ramdisk"]
        )
    return {"target": target, **args}


def set_provision_state(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """PUT /v1/nodes/{node}/states/provision: 202 with Location of the node's states."""
    node = dbread.get_node(req, node_ident)
    body = base.json_object(req, "the provision request")
    args = _check_provision_body(req, body, node)
    target = args.pop("target")
    policy.authorize(req, "baremetal:node:set_provision_state", node, f'set provision target "{target}"')
    event = states.API_TARGETS[target]
    # Reject an illegal transition here (400), before asking a conductor, as Ironic does.
    states.next_state(node.provision_state, event, node.uuid)
    req.rpcapi.change_provision_state(req.context, node, target, **args)
    return _accepted(req, node)


def _accepted(req: base.ApiRequest, node: Any) -> webob.Response:
    resp = webob.Response(status=202, headers=_states_location(req, node))
    resp.content_type = None
    return resp


def set_power_state(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """PUT /v1/nodes/{node}/states/power: 202."""
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:set_power_state", node)
    body = base.json_object(req, "the power request")
    unknown = sorted(set(body) - {"target", "timeout"})
    if unknown:
        raise errors.HTTPBadRequest(
            f"Unknown field(s) in the power request: {', '.join(unknown)}; allowed: target, timeout."
        )
    target = body.get("target")
    if target not in _POWER_TARGETS:
        raise errors.HTTPBadRequest(
            f"Invalid power state target {target!r}; use one of {', '.join(_POWER_TARGETS)}."
        )
    timeout = body.get("timeout")
    if target in _SOFT_POWER or timeout is not None:
        base.feature_version(req, 27, "Soft power actions and the power timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1):
        raise errors.HTTPBadRequest(f"timeout must be a positive integer (seconds), not {timeout!r}.")
    if node.provision_state in (states.ADOPTING,):
        raise errors.HTTPConflict(
            f'Node {node.uuid} is in provision state "{node.provision_state}"; retry later.'
        )
    req.rpcapi.change_power_state(req.context, node, target, timeout)
    return _accepted(req, node)


def set_maintenance(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """PUT /v1/nodes/{node}/maintenance {"reason": ...}: 202."""
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:set_maintenance", node)
    reason = None
    if req.body and req.body.strip():
        body = base.json_object(req, "the maintenance request")
        unknown = sorted(set(body) - {"reason"})
        if unknown:
            raise errors.HTTPBadRequest(f"Unknown field(s) in the maintenance request: {', '.join(unknown)}.")
        reason = validation.check_value("Maintenance request", "reason", "string", body.get("reason"))
    req.rpcapi.update_node(req.context, node, {"maintenance": True, "maintenance_reason": reason})
    return _accepted(req, node)


def unset_maintenance(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """DELETE /v1/nodes/{node}/maintenance: 202."""
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:clear_maintenance", node)
    req.rpcapi.update_node(req.context, node, {"maintenance": False})
    return _accepted(req, node)


def get_traits(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/traits."""
    base.require_version(req, versions.TRAITS)
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:traits:list", node)
    return base.json_response({"traits": db_api.get_node_traits(node.uuid)})


def set_traits(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """PUT /v1/nodes/{node}/traits {"traits": [...]}: 204."""
    base.require_version(req, versions.TRAITS)
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:traits:set", node)
    body = base.json_object(req, "the traits")
    if set(body) != {"traits"}:
        raise errors.HTTPBadRequest('The body must be {"traits": [...]} and nothing else.')
    traits = validation.check_traits(body["traits"], f"Node {node.uuid}")
    req.rpcapi.set_node_traits(req.context, node, traits)
    return base.no_content()


def add_trait(req: base.ApiRequest, node_ident: str, trait: str) -> webob.Response:
    """PUT /v1/nodes/{node}/traits/{trait}: 204."""
    base.require_version(req, versions.TRAITS)
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:traits:set", node)
    validation.check_trait(trait, f"Node {node.uuid}")
    current = db_api.get_node_traits(node.uuid)
    if trait not in current and len(current) >= validation.MAX_TRAITS:
        raise errors.HTTPBadRequest(
            f"Node {node.uuid} already has {validation.MAX_TRAITS} traits, the most allowed."
        )
    req.rpcapi.add_node_trait(req.context, node, trait)
    return base.no_content()


def delete_traits(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """DELETE /v1/nodes/{node}/traits: 204."""
    base.require_version(req, versions.TRAITS)
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:traits:delete", node)
    req.rpcapi.remove_node_trait(req.context, node, None)
    return base.no_content()


def delete_trait(req: base.ApiRequest, node_ident: str, trait: str) -> webob.Response:
    """DELETE /v1/nodes/{node}/traits/{trait}: 204; 404 when the node lacks it."""
    base.require_version(req, versions.TRAITS)
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:traits:delete", node)
    if trait not in db_api.get_node_traits(node.uuid):
        raise errors.HTTPNotFound(f"Node {node.uuid} doesn't have a trait '{trait}'")
    req.rpcapi.remove_node_trait(req.context, node, trait)
    return base.no_content()


def set_boot_device(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """PUT /v1/nodes/{node}/management/boot_device: 204."""
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:set_boot_device", node)
    body = base.json_object(req, "the boot device request")
    unknown = sorted(set(body) - {"boot_device", "persistent"})
    if unknown:
        raise errors.HTTPBadRequest(f"Unknown field(s) in the boot device request: {', '.join(unknown)}.")
    device = body.get("boot_device")
    if not isinstance(device, str) or not device:
        raise errors.HTTPBadRequest('The boot device request needs "boot_device", e.g. "pxe" or "disk".')
    persistent = body.get("persistent", False)
    if not isinstance(persistent, bool):
        raise errors.HTTPBadRequest(f"persistent must be true or false, not {persistent!r}.")
    req.rpcapi.set_boot_device(req.context, node, device, persistent)
    return base.no_content()


def get_boot_device(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/management/boot_device."""
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:get_boot_device", node)
    return base.json_response(req.rpcapi.get_boot_device(req.context, node))


def get_supported_boot_devices(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/management/boot_device/supported."""
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:get_boot_device", node)
    return base.json_response(
        {"supported_boot_devices": req.rpcapi.get_supported_boot_devices(req.context, node)}
    )


def validate(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/validate."""
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:validate", node)
    return base.json_response(req.rpcapi.validate_driver_interfaces(req.context, node))


def get_inventory(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/inventory (1.81): the inventory the node's agent reported, in the format
    Ironic serves (ironic-python-agent's keys, Kiln's own beside them), and plugin_data with what
    Ironic's inspection derives from it (its stored plugin_data laid over that)."""
    base.require_version(req, versions.INVENTORY)
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:inventory:get", node)
    inventory = db_api.get_node_inventory(node.id)
    if inventory is None:
        raise errors.HTTPNotFound(
            f"Inventory not found for node {node.uuid}: its agent has not reported one yet "
            "(boot it with kiln-agent, or inspect it)."
        )
    if "interfaces" not in inventory:  # Kiln's own model, as kiln-agent reports it
        inventory = ironic_format.to_ironic(inventory)
    plugin_data = {
        **plugin_data_mod.ironic_plugin_data(inventory),
        **(db_api.get_node_plugin_data(node.id) or {}),
    }
    return base.json_response({"inventory": inventory, "plugin_data": plugin_data})


_HISTORY_LIST = ("uuid", "created_at", "severity", "event")
_HISTORY_DETAIL = ("conductor", "event_type", "user")
_HISTORY_1_115 = ("project", "state", "target_provision_state", "duration_seconds")


def _history_events(req: base.ApiRequest, node: Any) -> list[dict[str, Any]]:
    """The node's history, oldest first: the conductor's events and one per inventory it reported."""
    events = [
        {
            "uuid": row["uuid"],
            "created_at": row["created_at"],
            "severity": row["severity"],
            "event": row["event"],
            "event_type": row["event_type"],
            "conductor": row["conductor"],
            "user": row["user"],
            **{k: row[k] for k in _HISTORY_1_115},
        }
        for row in db_history.list_events(node.id)
    ]
    for entry in db_api.list_inventory_history(node.id):
        changed = sorted((entry.get("changes") or {}).keys())
        events.append(
            {
                "uuid": f"{node.uuid[:24]}{entry['id']:012d}",
                "created_at": entry.get("created_at"),
                "severity": "INFO",
                "event": "Inventory reported" + (f"; changed: {', '.join(changed)}" if changed else ""),
                "event_type": "inspection",
                "conductor": None,
                "user": None,
                **dict.fromkeys(_HISTORY_1_115),
            }
        )
    events.sort(key=lambda e: (e["created_at"] is None, e["created_at"] or 0))
    for event in events:
        event["created_at"] = row_dicts.plain_value(event["created_at"])
        event["links"] = base.links(req, "nodes", node.uuid, f"/history/{event['uuid']}")
    return events


def get_history(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/history (1.78): the node's events (errors, faults, inventories)."""
    base.require_version(req, versions.NODE_HISTORY)
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:history:get", node)
    detail = bool(base.parse_bool(req.GET.get("detail"), "detail"))
    more = (*_HISTORY_DETAIL, *(_HISTORY_1_115 if req.at_least(versions.HISTORY_FIELDS) else ()))
    shown = (*_HISTORY_LIST, *(more if detail else ()), "links")
    events = [{k: e[k] for k in shown} for e in _history_events(req, node)]
    return base.json_response({"history": events})


def get_history_event(req: base.ApiRequest, node_ident: str, event: str) -> webob.Response:
    """GET /v1/nodes/{node}/history/{event} (1.78): one event with all its fields."""
    base.require_version(req, versions.NODE_HISTORY)
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:history:get", node)
    for found in _history_events(req, node):
        if found["uuid"] == event:
            if not req.at_least(versions.HISTORY_FIELDS):
                for key in _HISTORY_1_115:
                    found.pop(key)
            return base.json_response(found)
    raise errors.HTTPNotFound(f"Node history record {event} could not be found for node {node.uuid}.")


def list_node_ports(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/ports."""
    from agent.api.controllers import ports

    node = dbread.get_node(req, node_ident)
    return ports.list_for(req, node, detail=False, path=f"nodes/{node.uuid}/ports")


def list_node_ports_detail(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/ports/detail."""
    from agent.api.controllers import ports

    node = dbread.get_node(req, node_ident)
    return ports.list_for(req, node, detail=True, path=f"nodes/{node.uuid}/ports/detail")


def register(router: Router) -> None:
    """Add the per-node routes."""
    n = "/v1/nodes/{node_ident}"
    router.add("GET", f"{n}/states", get_states)
    router.add("PUT", f"{n}/states/provision", set_provision_state)
    router.add("PUT", f"{n}/states/power", set_power_state)
    router.add("PUT", f"{n}/maintenance", set_maintenance)
    router.add("DELETE", f"{n}/maintenance", unset_maintenance)
    router.add("GET", f"{n}/traits", get_traits)
    router.add("PUT", f"{n}/traits", set_traits)
    router.add("DELETE", f"{n}/traits", delete_traits)
    router.add("PUT", f"{n}/traits/{{trait}}", add_trait)
    router.add("DELETE", f"{n}/traits/{{trait}}", delete_trait)
    router.add("PUT", f"{n}/management/boot_device", set_boot_device)
    router.add("GET", f"{n}/management/boot_device", get_boot_device)
    router.add("GET", f"{n}/management/boot_device/supported", get_supported_boot_devices)
    router.add("GET", f"{n}/validate", validate)
    router.add("GET", f"{n}/inventory", get_inventory)
    router.add("GET", f"{n}/history", get_history)
    router.add("GET", f"{n}/history/{{event}}", get_history_event)
    router.add("GET", f"{n}/ports", list_node_ports)
    router.add("GET", f"{n}/ports/detail", list_node_ports_detail)
