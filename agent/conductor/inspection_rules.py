"""Inspection rules applied to every inventory a node stores: the rules of phase "main", highest
priority first; each whose conditions hold runs its actions on the node's fields, traits and
plugin_data (Ironic's rule language, agent.common.rules). A "fail" action stops the rules and
records the reason in the node's last_error."""

from __future__ import annotations

import copy
from typing import Any

import jsonpointer
from oslo_log import log as logging

from agent.common import row_dicts, rules
from agent.db import inspection_rules as db_rules
from agent.inventory import ironic as ironic_format
from agent.inventory import plugin_data as plugin_data_mod

LOG = logging.getLogger(__name__)

#: Node fields a rule may not change.
_FROZEN = frozenset({"id", "uuid", "provision_state", "target_provision_state", "reservation", "created_at"})


class RuleFailed(Exception):
    """A rule's "fail" action ran."""


def _pointer(path: str) -> str:
    return path if path.startswith("/") else "/" + path.replace(".", "/")


def _set(doc: dict, path: str, value: Any) -> None:
    pointer = _pointer(path)
    if pointer.strip("/").split("/")[0] in _FROZEN:
        raise ValueError(f"an inspection rule cannot change {pointer}")
    parts = pointer.strip("/").split("/")
    target = doc
    for part in parts[:-1]:  # create the dicts on the way, as Ironic does
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[parts[-1]] = value


def _run_action(action: dict, sources: dict, node: dict, traits: set[str], plugin: dict) -> None:
    op = action["op"]
    args = rules.resolve(action.get("args", []), sources)
    if isinstance(args, dict):
        args = list(args.values())
    if op == "fail":
        raise RuleFailed(str(args[0]))
    if op == "set-attribute":
        _set(node, args[0], args[1])
    elif op == "extend-attribute":
        current = jsonpointer.resolve_pointer(node, _pointer(args[0]), None) or []
        unique = len(args) > 2 and bool(args[2])
        if not (unique and args[1] in current):
            _set(node, args[0], [*current, args[1]])
    elif op == "del-attribute":
        parts = _pointer(args[0]).strip("/").split("/")
        parent = jsonpointer.resolve_pointer(node, "/" + "/".join(parts[:-1]), None) if parts[:-1] else node
        if isinstance(parent, dict):
            parent.pop(parts[-1], None)
    elif op in ("set-capability", "unset-capability"):
        caps = dict(
            item.split(":", 1)
            for item in str(node["properties"].get("capabilities") or "").split(",")
            if ":" in item
        )
        if op == "set-capability":
            caps[str(args[0])] = str(args[1])
        else:
            caps.pop(str(args[0]), None)
        node["properties"]["capabilities"] = ",".join(f"{k}:{v}" for k, v in caps.items())
    elif op == "add-trait":
        traits.add(str(args[0]))
    elif op == "remove-trait":
        traits.discard(str(args[0]))
    elif op == "set-plugin-data":
        _set(plugin, args[0], args[1])
    elif op == "extend-plugin-data":
        current = jsonpointer.resolve_pointer(plugin, _pointer(args[0]), None) or []
        _set(plugin, args[0], [*current, args[1]])
    elif op == "unset-plugin-data":
        plugin.pop(_pointer(args[0]).strip("/"), None)
    elif op == "log":
        LOG.log(20, "Inspection rule on node %s: %s", node["uuid"], args[0])
    else:  # the port actions: Kiln derives ports from the inventory itself
        LOG.warning("Node %s: inspection rule action %s is not applied by Kiln", node["uuid"], op)


def apply_rules(node: Any, inventory: dict, values: dict, traits: list[str]) -> tuple[dict, list[str], dict]:
    """Run the matching rules on ``inventory`` (Kiln's model); return (values, traits, plugin_data)
    with their changes: ``values`` gains the node fields the rules set."""
    found = db_rules.rules_by_priority("main")
    if not found:
        return values, traits, {}
    doc = inventory if "interfaces" in inventory else ironic_format.to_ironic(inventory)
    plugin = plugin_data_mod.ironic_plugin_data(doc)
    # The report's fast path hands over a plain namespace of the node's fields, not a row.
    current = row_dicts.node_to_dict(node) if hasattr(node, "__table__") else dict(vars(node))
    before = {**current, **copy.deepcopy(values)}
    fields = copy.deepcopy(before)
    fields["properties"] = dict(fields.get("properties") or {})
    trait_set = set(traits)
    for rule in found:
        sources = {"inventory": doc, "plugin_data": plugin, "node": fields}
        try:
            if not rules.rule_matches(rule, sources):
                continue
            for action in rule.actions or []:
                _run_action(action, sources, fields, trait_set, plugin)
        except RuleFailed as exc:
            fields["last_error"] = f"Inspection rule {rule.uuid} failed the node: {exc}"
            LOG.error("Node %s: %s", node.uuid, fields["last_error"])
            break
        except (ValueError, TypeError, KeyError, IndexError, jsonpointer.JsonPointerException) as exc:
            what = "(sensitive rule)" if rule.sensitive else str(exc)
            LOG.error("Node %s: inspection rule %s could not run: %s", node.uuid, rule.uuid, what)
    changed = {k: v for k, v in fields.items() if k not in _FROZEN and before.get(k) != v and k != "traits"}
    return {**values, **changed}, sorted(trait_set), plugin
