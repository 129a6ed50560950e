"""Reads behind the fleet page: nodes narrowed by state, owner, traits; their traits and inventories.

Filtering happens in SQL (a GPU SKU and the quarantine are traits), so a page of a large fleet
loads only the inventories of the nodes it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, func, or_, select

from agent.db import engine as db_engine
from agent.db.common import list_page
from agent.db.models import Node, NodeInventory, NodeInventoryHistory, NodeTrait

_CHUNK = 500


@dataclass(frozen=True)
class FleetFilter:
    """What the fleet table is narrowed to; None means any."""

    provision_state: str | None = None
    owner: str | None = None
    traits: tuple[str, ...] = ()  # each required, e.g. CUSTOM_GPU_H100_SXM5_80GB
    without_traits: tuple[str, ...] = ()  # each absent
    maintenance: bool | None = None
    project: str | None = None  # the caller's project (owner or lessee); None: every node


def _has_trait(trait: str) -> Any:
    return exists().where(NodeTrait.node_id == Node.id, NodeTrait.trait == trait)


def _narrow(query: Select, where: FleetFilter) -> Select:
    if where.provision_state is not None:
        query = query.where(Node.provision_state == where.provision_state)
    if where.owner is not None:
        query = query.where(Node.owner == where.owner)
    for trait in where.traits:
        query = query.where(_has_trait(trait))
    for trait in where.without_traits:
        query = query.where(~_has_trait(trait))
    if where.maintenance is not None:
        query = query.where(Node.maintenance == where.maintenance)
    if where.project is not None:
        query = query.where(or_(Node.owner == where.project, Node.lessee == where.project))
    return query


def list_fleet(where: FleetFilter, limit: int, marker: str | None) -> list[Node]:
    """Up to ``limit`` nodes matching ``where``, by name, after node UUID ``marker``."""
    with db_engine.session() as sess:
        return list_page(sess, _narrow(select(Node), where), Node, "node", limit, marker, "name", "asc")


def count_fleet(where: FleetFilter) -> int:
    """How many nodes match ``where``."""
    with db_engine.session() as sess:
        return sess.scalar(_narrow(select(func.count(Node.id)), where)) or 0


def _chunks(ids: list[int]) -> list[list[int]]:
    wanted = sorted(set(ids))
    return [wanted[i : i + _CHUNK] for i in range(0, len(wanted), _CHUNK)]


def traits_of(node_ids: list[int]) -> dict[int, list[str]]:
    """{node id: its traits, sorted} for ``node_ids``."""
    found: dict[int, list[str]] = {i: [] for i in node_ids}
    with db_engine.session() as sess:
        for chunk in _chunks(node_ids):
            rows = sess.execute(
                select(NodeTrait.node_id, NodeTrait.trait).where(NodeTrait.node_id.in_(chunk))
            )
            for node_id, trait in rows:
                found[node_id].append(trait)
    return {i: sorted(t) for i, t in found.items()}


def inventories_of(node_ids: list[int]) -> dict[int, dict]:
    """{node id: its current inventory} for those of ``node_ids`` that reported one."""
    found: dict[int, dict] = {}
    with db_engine.session() as sess:
        for chunk in _chunks(node_ids):
            rows = sess.execute(
                select(NodeInventory.node_id, NodeInventory.inventory).where(NodeInventory.node_id.in_(chunk))
            )
            found.update((node_id, inv) for node_id, inv in rows if isinstance(inv, dict))
    return found


#: The parts of an inventory the fleet table summarises (the rest, e.g. pci_devices, is not read).
TABLE_KEYS = ("cpu", "memory", "gpus", "nics", "disks")


def table_inventories_of(node_ids: list[int]) -> dict[int, dict]:
    """{node id: the TABLE_KEYS parts of its current inventory}, extracted by the database."""
    columns = [NodeInventory.inventory[key] for key in TABLE_KEYS]
    found: dict[int, dict] = {}
    with db_engine.session() as sess:
        for chunk in _chunks(node_ids):
            rows = sess.execute(
                select(NodeInventory.node_id, *columns).where(
                    NodeInventory.node_id.in_(chunk), NodeInventory.inventory.is_not(None)
                )
            )
            for node_id, *parts in rows:
                found[node_id] = dict(zip(TABLE_KEYS, parts, strict=True))
    return found


def facets(project: str | None, trait_prefix: str) -> dict[str, list[str]]:
    """What the filters offer among the nodes ``project`` sees: states, owners, traits with the prefix."""
    where = FleetFilter(project=project)
    with db_engine.session() as sess:
        states = sess.scalars(_narrow(select(Node.provision_state).distinct(), where))
        owners = sess.scalars(_narrow(select(Node.owner).distinct(), where))
        traits = sess.scalars(
            _narrow(
                select(NodeTrait.trait)
                .distinct()
                .join(Node, Node.id == NodeTrait.node_id)
                .where(NodeTrait.trait.startswith(trait_prefix)),
                where,
            )
        )
        return {
            "states": sorted(s for s in states if s),
            "owners": sorted(o for o in owners if o),
            "traits": sorted(traits),
        }


def history_of(node_id: int, limit: int) -> list[dict[str, Any]]:
    """The node's latest ``limit`` inventory reports, newest first: id, created_at, changes (no inventory)."""
    query = (
        select(NodeInventoryHistory.id, NodeInventoryHistory.created_at, NodeInventoryHistory.changes)
        .where(NodeInventoryHistory.node_id == node_id)
        .order_by(NodeInventoryHistory.id.desc())
        .limit(limit)
    )
    with db_engine.session() as sess:
        return [{"id": i, "created_at": at, "changes": changes} for i, at, changes in sess.execute(query)]
