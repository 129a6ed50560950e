"""API authorization with oslo.policy: Ironic's rule names, default roles and scopes.

Personas (Keystone's default roles; admin implies member implies reader):
system admin/member/reader (a token scoped to system "all"), a node's owner project and lessee
project (each as admin, member or reader), and the service role. Operators override any rule in
``[oslo_policy]policy_file`` (YAML); ``oslopolicy-sample-generator --namespace kiln`` lists them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from oslo_config import cfg
from oslo_policy import opts as policy_opts
from oslo_policy import policy

from agent.api import errors
from agent.common import secrets

CONF = cfg.CONF

policy_opts.set_defaults(CONF, "policy.yaml", enforce_scope=True, enforce_new_defaults=True)

# A target value no credential carries: stands for an unset node owner/lessee, so that
# "project_id:%(node.owner)s" never matches a caller without a project.
_UNSET = "\x00unset"

SYSTEM_ADMIN = "role:admin and system_scope:all"
SYSTEM_MEMBER = "(role:member and system_scope:all) or rule:service_role"
SYSTEM_READER = (
    "(role:reader and system_scope:all) or (role:service and system_scope:all) or rule:service_role"
)
SYSTEM_SERVICE = "role:service and system_scope:all"
PROJECT_SERVICE = "role:service and project_id:%(node.owner)s"
PROJECT_ADMIN = "role:admin and project_id:%(node.owner)s"
PROJECT_MEMBER = "role:member and (project_id:%(node.owner)s or project_id:%(node.lessee)s)"
PROJECT_READER = "role:reader and (project_id:%(node.owner)s or project_id:%(node.lessee)s)"
PROJECT_OWNER_ADMIN = "role:admin and project_id:%(node.owner)s"
PROJECT_OWNER_MANAGER = "role:manager and project_id:%(node.owner)s"
PROJECT_OWNER_MEMBER = "role:member and project_id:%(node.owner)s"
PROJECT_OWNER_READER = "role:reader and project_id:%(node.owner)s"
PROJECT_LESSEE_ADMIN = "role:admin and project_id:%(node.lessee)s"
PROJECT_LESSEE_MANAGER = "role:manager and project_id:%(node.lessee)s"
API_READER = "(role:reader) or (role:service)"


def _any(*checks: str) -> str:
    return " or ".join(f"({c})" for c in checks)


SYSTEM_OR_PROJECT_MEMBER = _any(SYSTEM_MEMBER, PROJECT_MEMBER, SYSTEM_SERVICE)
SYSTEM_OR_PROJECT_READER = _any(SYSTEM_READER, PROJECT_READER, PROJECT_SERVICE)
SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN = _any(
    SYSTEM_MEMBER,
    SYSTEM_SERVICE,
    PROJECT_OWNER_MEMBER,
    PROJECT_LESSEE_ADMIN,
    PROJECT_LESSEE_MANAGER,
    PROJECT_SERVICE,
)
SYSTEM_ADMIN_OR_OWNER_ADMIN = _any(
    SYSTEM_ADMIN, SYSTEM_SERVICE, PROJECT_OWNER_ADMIN, PROJECT_OWNER_MANAGER, PROJECT_SERVICE
)
SYSTEM_MEMBER_OR_OWNER_ADMIN = _any(
    SYSTEM_MEMBER, SYSTEM_SERVICE, PROJECT_OWNER_ADMIN, PROJECT_OWNER_MANAGER, PROJECT_SERVICE
)
SYSTEM_MEMBER_OR_OWNER_MEMBER = _any(SYSTEM_MEMBER, SYSTEM_SERVICE, PROJECT_OWNER_MEMBER, PROJECT_SERVICE)
SYSTEM_OR_OWNER_READER = _any(SYSTEM_READER, SYSTEM_SERVICE, PROJECT_OWNER_READER, PROJECT_SERVICE)

NODE = "/nodes/{node_ident}"
_BOTH = ["system", "project"]


def _rule(name: str, check: str, description: str, *ops: str, scope: list[str] | None = None):
    """A documented rule; each of ``ops`` is "METHOD path"."""
    operations = [{"method": op.split(" ", 1)[0], "path": op.split(" ", 1)[1]} for op in ops]
    return policy.DocumentedRuleDefault(
        name=name,
        check_str=check,
        description=description,
        operations=operations,
        scope_types=scope or _BOTH,
    )


_GENERIC = [
    policy.RuleDefault(
        "service_role",
        "role:service and project_name:%(config.service_project_name)s",
        description="The service role in the service project (see [DEFAULT]rbac_service_project_name).",
    ),
    policy.RuleDefault(
        "show_password", "!", description="Show node driver_info secrets unmasked in API responses."
    ),
    policy.RuleDefault(
        "show_instance_secrets", "!", description="Show instance_info secrets unmasked in API responses."
    ),
]

# Node fields a PATCH may change under their own rule (Ironic's names); any other field falls
# under baremetal:node:update.
PATCH_RULES: dict[str, str] = {
    "driver_info": "baremetal:node:update:driver_info",
    "properties": "baremetal:node:update:properties",
    "chassis_uuid": "baremetal:node:update:chassis_uuid",
    "instance_uuid": "baremetal:node:update:instance_uuid",
    "lessee": "baremetal:node:update:lessee",
    "owner": "baremetal:node:update:owner",
    "driver": "baremetal:node:update:driver_interfaces",
    "network_data": "baremetal:node:update:network_data",
    "conductor_group": "baremetal:node:update:conductor_group",
    "name": "baremetal:node:update:name",
    "retired": "baremetal:node:update:retired",
    "retired_reason": "baremetal:node:update:retired",
    "shard": "baremetal:node:update:shard",
    "parent_node": "baremetal:node:update:parent_node",
    "extra": "baremetal:node:update_extra",
    "instance_info": "baremetal:node:update_instance_info",
}
# driver_info holds the BMC credentials: unlike Ironic (owner members may change it), Kiln keeps it
# to the system by default; a policy file can give it back to owners.
_PATCH_CHECKS = {
    "driver_info": SYSTEM_MEMBER,
    "properties": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "chassis_uuid": SYSTEM_ADMIN,
    "instance_uuid": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "lessee": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "owner": SYSTEM_MEMBER,
    "driver_interfaces": SYSTEM_MEMBER_OR_OWNER_ADMIN,
    "network_data": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "conductor_group": SYSTEM_MEMBER,
    "name": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "retired": SYSTEM_MEMBER_OR_OWNER_MEMBER,
    "shard": SYSTEM_ADMIN,
    "parent_node": SYSTEM_MEMBER,
}
# Fields hidden from a caller below baremetal:node:get:filter_threshold without their get rule.
REDACTED_FIELDS = ("last_error", "reservation", "driver_internal_info", "driver_info")

_NODE = [
    _rule("baremetal:node:create", _any(SYSTEM_ADMIN, SYSTEM_SERVICE), "Create nodes.", "POST /nodes"),
    _rule(
        "baremetal:node:create:self_owned_node",
        "(role:admin) or (role:service)",
        "Create nodes owned by the caller's project.",
        "POST /nodes",
    ),
    _rule(
        "baremetal:node:list", API_READER, "List the nodes the caller's project owns or leases.", "GET /nodes"
    ),
    _rule("baremetal:node:list_all", SYSTEM_READER, "List every node.", "GET /nodes"),
    _rule("baremetal:node:get", SYSTEM_OR_PROJECT_READER, "Show a node.", f"GET {NODE}"),
    _rule(
        "baremetal:node:get:filter_threshold",
        SYSTEM_READER,
        "Callers below this see fields redacted unless their baremetal:node:get:<field> rule passes.",
        f"GET {NODE}",
    ),
    *[
        _rule(f"baremetal:node:get:{f}", SYSTEM_OR_OWNER_READER, f"Show a node's {f}.", f"GET {NODE}")
        for f in REDACTED_FIELDS
    ],
    *[
        _rule(f"baremetal:node:update:{f}", c, f"Change a node's {f}.", f"PATCH {NODE}")
        for f, c in _PATCH_CHECKS.items()
    ],
    _rule("baremetal:node:update", SYSTEM_OR_PROJECT_MEMBER, "Change other node fields.", f"PATCH {NODE}"),
    _rule("baremetal:node:update_extra", SYSTEM_OR_PROJECT_MEMBER, "Change a node's extra.", f"PATCH {NODE}"),
    _rule(
        "baremetal:node:update_instance_info",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Change a node's instance_info.",
        f"PATCH {NODE}",
    ),
    _rule("baremetal:node:delete", SYSTEM_ADMIN, "Delete nodes.", f"DELETE {NODE}"),
    _rule(
        "baremetal:node:delete:self_owned_node",
        PROJECT_ADMIN,
        "Delete nodes the project owns.",
        f"DELETE {NODE}",
    ),
    _rule(
        "baremetal:node:validate",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Validate.",
        f"GET {NODE}/validate",
    ),
    _rule(
        "baremetal:node:set_maintenance",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Set maintenance.",
        f"PUT {NODE}/maintenance",
    ),
    _rule(
        "baremetal:node:clear_maintenance",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Clear maintenance.",
        f"DELETE {NODE}/maintenance",
    ),
    _rule(
        "baremetal:node:get_boot_device",
        SYSTEM_MEMBER_OR_OWNER_ADMIN,
        "Show the boot device.",
        f"GET {NODE}/management/boot_device",
    ),
    _rule(
        "baremetal:node:set_boot_device",
        SYSTEM_MEMBER_OR_OWNER_ADMIN,
        "Change the boot device.",
        f"PUT {NODE}/management/boot_device",
    ),
    _rule("baremetal:node:get_states", SYSTEM_OR_PROJECT_READER, "Show states.", f"GET {NODE}/states"),
    _rule(
        "baremetal:node:set_power_state",
        SYSTEM_OR_PROJECT_MEMBER,
        "Change power.",
        f"PUT {NODE}/states/power",
    ),
    _rule(
        "baremetal:node:set_provision_state",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Deploy, undeploy, clean, rescue, ...",
        f"PUT {NODE}/states/provision",
    ),
    _rule("baremetal:node:vif:list", SYSTEM_OR_PROJECT_READER, "List VIFs.", f"GET {NODE}/vifs"),
    _rule(
        "baremetal:node:vif:attach",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Attach VIFs.",
        f"POST {NODE}/vifs",
    ),
    _rule(
        "baremetal:node:vif:detach",
        SYSTEM_OR_OWNER_MEMBER_AND_LESSEE_ADMIN,
        "Detach VIFs.",
        f"DELETE {NODE}/vifs/{{vif}}",
    ),
    _rule("baremetal:node:traits:list", SYSTEM_OR_PROJECT_READER, "List traits.", f"GET {NODE}/traits"),
    _rule("baremetal:node:traits:set", SYSTEM_MEMBER_OR_OWNER_ADMIN, "Add traits.", f"PUT {NODE}/traits"),
    _rule(
        "baremetal:node:traits:delete",
        SYSTEM_MEMBER_OR_OWNER_ADMIN,
        "Remove traits.",
        f"DELETE {NODE}/traits",
    ),
    _rule("baremetal:node:history:get", SYSTEM_OR_OWNER_READER, "Show history.", f"GET {NODE}/history"),
    _rule("baremetal:node:inventory:get", SYSTEM_OR_OWNER_READER, "Show inventory.", f"GET {NODE}/inventory"),
    _rule("baremetal:node:vmedia:attach", SYSTEM_OR_PROJECT_MEMBER, "Attach media.", f"POST {NODE}/vmedia"),
    _rule("baremetal:node:vmedia:detach", SYSTEM_OR_PROJECT_MEMBER, "Detach media.", f"DELETE {NODE}/vmedia"),
    _rule(
        "baremetal:node:get_console",
        SYSTEM_MEMBER_OR_OWNER_ADMIN,
        "Show the console.",
        f"GET {NODE}/states/console",
    ),
    _rule(
        "baremetal:node:set_console_state",
        SYSTEM_MEMBER_OR_OWNER_ADMIN,
        "Enable or disable the console.",
        f"PUT {NODE}/states/console",
    ),
    _rule("baremetal:shards:get", SYSTEM_READER, "List shards.", "GET /shards"),
    _rule(
        "kiln:node:owner_action",
        SYSTEM_MEMBER_OR_OWNER_MEMBER,
        "Kiln actions on a node reserved to its owner and the system (turnover records, ...).",
        f"GET {NODE}/turnover",
    ),
]

_RECORDS = [
    _rule(
        "kiln:system_record:write",
        SYSTEM_MEMBER,
        "Create, change or delete system records: chassis, deploy templates, inspection rules.",
        "POST /chassis",
        "POST /deploy_templates",
        "POST /inspection_rules",
    ),
    _rule(
        "kiln:record:write",
        _any(SYSTEM_MEMBER, "role:member"),
        "Create, change or delete project records (runbooks); the project's own only.",
        "POST /runbooks",
    ),
    _rule(
        "baremetal:allocation:create",
        _any(SYSTEM_MEMBER, "role:member"),
        "Create allocations.",
        "POST /allocations",
    ),
    _rule(
        "baremetal:allocation:delete",
        _any(SYSTEM_MEMBER, "role:member"),
        "Delete allocations (the project's own only).",
        "DELETE /allocations/{allocation_id}",
    ),
]

_PORTS = [
    rule
    for kind, path in (("port", "/ports"), ("portgroup", "/portgroups"))
    for rule in (
        _rule(f"baremetal:{kind}:get", SYSTEM_OR_PROJECT_READER, f"Show a {kind}.", f"GET {path}/{{ident}}"),
        _rule(f"baremetal:{kind}:list", API_READER, f"List the project's {kind}s.", f"GET {path}"),
        _rule(f"baremetal:{kind}:list_all", SYSTEM_READER, f"List every {kind}.", f"GET {path}"),
        _rule(f"baremetal:{kind}:create", SYSTEM_ADMIN_OR_OWNER_ADMIN, f"Create {kind}s.", f"POST {path}"),
        _rule(
            f"baremetal:{kind}:delete",
            SYSTEM_ADMIN_OR_OWNER_ADMIN,
            f"Delete {kind}s.",
            f"DELETE {path}/{{ident}}",
        ),
        _rule(
            f"baremetal:{kind}:update",
            SYSTEM_MEMBER_OR_OWNER_ADMIN,
            f"Change {kind}s.",
            f"PATCH {path}/{{ident}}",
        ),
    )
]


def list_rules() -> list:
    """Every default rule (the oslo.policy.policies entry point)."""
    return [*_GENERIC, *_NODE, *_RECORDS, *_PORTS]


_ENFORCER: policy.Enforcer | None = None
_LOCK = threading.Lock()


def get_enforcer() -> policy.Enforcer:
    """The process's Enforcer with the defaults registered (the oslo.policy.enforcer entry point)."""
    global _ENFORCER
    with _LOCK:
        if _ENFORCER is None:
            enforcer = policy.Enforcer(CONF)
            enforcer.register_defaults(list_rules())
            _ENFORCER = enforcer
        return _ENFORCER


def reset() -> None:
    """Forget the Enforcer (tests that change [oslo_policy] options)."""
    global _ENFORCER
    _ENFORCER = None


def credentials(context: Mapping[str, Any]) -> dict[str, Any]:
    """The oslo.policy credentials of a request context (keys left out when unset)."""
    creds: dict[str, Any] = {"roles": list(context.get("roles") or [])}
    for key in ("user_id", "project_id", "project_name", "system_scope"):
        if context.get(key):
            creds[key] = context[key]
    return creds


def target(node: Any = None) -> dict[str, str]:
    """The policy target of ``node`` (ORM row, dict or None)."""
    get = (
        (node.get if isinstance(node, dict) else lambda k: getattr(node, k, None))
        if node is not None
        else None
    )
    owner = get("owner") if get else None
    lessee = get("lessee") if get else None
    return {
        "node.owner": owner or _UNSET,
        "node.lessee": lessee or _UNSET,
        "config.service_project_name": CONF.rbac_service_project_name,
    }


def check(req: Any, rule: str, node: Any = None) -> bool:
    """Whether the caller of ``req`` passes ``rule`` on ``node``."""
    context = getattr(req, "context", None) or {}  # a request the app did not build has no caller
    return get_enforcer().enforce(rule, target(node), credentials(context), do_raise=False)


def authorize(req: Any, rule: str, node: Any = None, what: str | None = None) -> None:
    """403 naming ``rule`` (and ``what``, when given) unless the caller passes it on ``node``."""
    if not check(req, rule, node):
        detail = f" ({what})" if what else ""
        raise errors.HTTPForbidden(
            f"Access was denied to this resource{detail}: policy {rule} does not allow it."
        )


def authorize_any(req: Any, rules: Iterable[str], node: Any = None) -> None:
    """403 naming ``rules`` unless the caller passes one of them on ``node``."""
    rules = list(rules)
    if not any(check(req, rule, node) for rule in rules):
        raise errors.HTTPForbidden(f"Access was denied: none of the policies {', '.join(rules)} allows it.")


def creating_project(req: Any) -> str | None:
    """The project a new node must be owned by: None for baremetal:node:create, the caller's own
    project under baremetal:node:create:self_owned_node; 403 when neither passes."""
    if check(req, "baremetal:node:create"):
        return None
    if (getattr(req, "context", None) or {}).get("project_id") and check(
        req, "baremetal:node:create:self_owned_node"
    ):
        return req.context["project_id"]
    raise errors.HTTPForbidden(
        "Access was denied: policies baremetal:node:create and baremetal:node:create:self_owned_node "
        "do not allow this caller to create nodes."
    )


def authorize_node_patch(req: Any, node: Any, fields: Iterable[str]) -> None:
    """403 naming the field when the caller may not change it (Ironic's per-field rules)."""
    generic = False
    fields = list(fields)
    for field in fields:
        rule = PATCH_RULES.get(field)
        if rule is None and field.endswith("_interface"):
            rule = "baremetal:node:update:driver_interfaces"
        if rule is None:
            generic = True
        elif not check(req, rule, node):
            raise errors.HTTPForbidden(
                f"Access was denied: the caller may not change the node's {field} (policy {rule})."
            )
    if (generic or not fields) and not check(req, "baremetal:node:update", node):
        raise errors.HTTPForbidden(
            "Access was denied: the caller may not update this node (baremetal:node:update)."
        )


def sanitize_node(req: Any, node: Any, view: dict[str, Any]) -> dict[str, Any]:
    """Redact the fields of ``view`` the caller may not read (as Ironic does below filter_threshold)."""
    if check(req, "baremetal:node:get:filter_threshold", node):
        return view
    for field in REDACTED_FIELDS:
        if field in view and not check(req, f"baremetal:node:get:{field}", node):
            view[field] = f"** Value Redacted - Requires baremetal:node:get:{field} permission. **"
    return view


def driver_info_view(req: Any, node: Any) -> dict[str, Any]:
    """``node``'s driver_info as the caller may see it: secrets masked unless show_password passes."""
    info = node.get("driver_info") if isinstance(node, dict) else getattr(node, "driver_info", None)
    if check(req, "show_password", node):
        return dict(info or {})
    return secrets.mask_driver_info(info)
