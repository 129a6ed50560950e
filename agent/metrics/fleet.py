"""The fleet as Prometheus metrics, read from the database at each scrape.

Nothing here is kept between scrapes but a memo of each node's GPUs by SKU, keyed by the time its
inventory was stored (a changed inventory is read again), so every API process reports the same
fleet and the numbers are never older than the scrape. Labels are states, SKUs and booleans only,
never a node: the number of series does not grow with the fleet.
"""

from __future__ import annotations

import bisect
import datetime
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from typing import Any

from oslo_log import log as logging
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from agent.common import states
from agent.conductor import traits as traits_mod
from agent.conductor.gpu_acceptance import TRAIT_QUARANTINE
from agent.db import engine as db_engine
from agent.db.models import Allocation, Conductor, Node, NodeInventory, NodeTrait, utcnow

LOG = logging.getLogger(__name__)

#: Upper bounds (seconds) of the heartbeat age buckets: agents beat every 30 s by default.
HEARTBEAT_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 21600.0, 86400.0)
#: States in which a node (and so its GPUs) belongs to a tenant, whether or not it has an instance.
ALLOCATED_STATES = frozenset(
    {
        states.DEPLOYING,
        states.DEPLOYWAIT,
        states.DEPLOYHOLD,
        states.ACTIVE,
        states.RESCUING,
        states.RESCUEWAIT,
        states.RESCUE,
        states.RESCUEFAIL,
        states.UNRESCUING,
        states.UNRESCUEFAIL,
        states.SERVICING,
        states.SERVICEWAIT,
        states.SERVICEHOLD,
        states.SERVICEFAIL,
    }
)
GPU_STATES = ("available", "allocated", "quarantined", "unavailable")
#: SKU label of a GPU the catalogue does not name (or whose reported SKU it does not know).
UNKNOWN_SKU = "unknown"
#: Node ids per query when reading changed inventories' GPUs.
_CHUNK = 500


def _label(value: Any) -> str:
    """A label value: None becomes "none", booleans "true"/"false"."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def gpu_state(provision_state: str | None, maintenance: bool, allocated: bool, quarantined: bool) -> str:
    """What a node's GPUs are: quarantined, allocated (a tenant's), available (idle), or unavailable."""
    if quarantined:
        return "quarantined"
    if allocated or provision_state in ALLOCATED_STATES:
        return "allocated"
    if provision_state == states.AVAILABLE and not maintenance:
        return "available"
    return "unavailable"


def gpus_by_sku(gpus: Any) -> dict[str, int]:
    """{SKU: count} of a stored inventory's ``gpus`` list (virtual functions left out, as traits do)."""
    known = traits_mod.sku_traits()
    tally: Tally[str] = Tally()
    for gpu in gpus if isinstance(gpus, list) else ():
        if not isinstance(gpu, dict) or gpu.get("is_virtual_function"):
            continue
        sku = gpu.get("sku")
        trait = sku.get("trait") if isinstance(sku, dict) else None
        name = traits_mod.slug(trait) if isinstance(trait, str) else ""
        tally[name if name and f"CUSTOM_GPU_{name}" in known else UNKNOWN_SKU] += 1
    return dict(tally)


class FleetCollector(Collector):
    """Nodes by state, GPUs by SKU and state, agents' heartbeat ages and conductors, from the database."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine: Any = None
        #: node id -> (inventory stored at, {SKU: GPUs})
        self._gpus: dict[int, tuple[datetime.datetime | None, dict[str, int]]] = {}

    def describe(self) -> Iterable[Metric]:
        """No description up front: describing would query the database at registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Query the fleet now and yield its metrics (and whether the queries succeeded)."""
        started = time.perf_counter()
        up = GaugeMetricFamily(
            "kiln_fleet_scrape_success", "Whether the last read of the fleet from the database succeeded."
        )
        try:
            with self._lock, db_engine.get_engine().connect() as conn:
                families = [
                    self._nodes(conn),
                    self._gpu_families(conn),
                    self._heartbeats(conn),
                    self._conductors(conn),
                ]
        except SQLAlchemyError as exc:
            LOG.error("Reading the fleet for /metrics failed: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        yield from families
        up.add_metric([], 1)
        yield up
        took = GaugeMetricFamily(
            "kiln_fleet_scrape_duration_seconds", "Seconds the last read of the fleet from the database took."
        )
        took.add_metric([], time.perf_counter() - started)
        yield took

    @staticmethod
    def _quarantine_join() -> tuple[Any, Any]:
        trait = aliased(NodeTrait)
        return trait, and_(trait.node_id == Node.id, trait.trait == TRAIT_QUARANTINE)

    def _nodes(self, conn: Any) -> Metric:
        trait, on = self._quarantine_join()
        quarantined = trait.node_id.is_not(None)
        rows = conn.execute(
            select(Node.provision_state, Node.power_state, Node.maintenance, quarantined, func.count())
            .select_from(Node)
            .outerjoin(trait, on)
            .group_by(Node.provision_state, Node.power_state, Node.maintenance, quarantined)
        )
        family = GaugeMetricFamily(
            "kiln_nodes",
            "Nodes by provision state, power state, maintenance and GPU quarantine (CUSTOM_GPU_QUARANTINE).",
            labels=["provision_state", "power_state", "maintenance", "quarantined"],
        )
        for provision, power, maintenance, quarantine, count in rows:
            family.add_metric(
                [_label(provision), _label(power), _label(bool(maintenance)), _label(bool(quarantine))], count
            )
        return family

    def _gpu_families(self, conn: Any) -> Metric:
        engine = conn.engine
        if engine is not self._engine:  # another database (tests, a reconfigured process): forget
            self._engine, self._gpus = engine, {}
        trait, on = self._quarantine_join()
        allocated = (
            Node.instance_uuid.is_not(None)
            | select(Allocation.id).where(Allocation.node_id == Node.id).exists()
        )
        rows = conn.execute(
            select(
                NodeInventory.node_id,
                NodeInventory.created_at,
                Node.provision_state,
                Node.maintenance,
                allocated,
                trait.node_id.is_not(None),
            )
            .join(Node, Node.id == NodeInventory.node_id)
            .outerjoin(trait, on)
        ).all()
        stale = [r[0] for r in rows if (r[0] not in self._gpus or self._gpus[r[0]][0] != r[1])]
        self._read_gpus(conn, stale)
        present = {r[0] for r in rows}
        for node_id in self._gpus.keys() - present:
            del self._gpus[node_id]
        totals: Tally[tuple[str, str]] = Tally()
        for node_id, _stored, provision, maintenance, is_allocated, quarantined in rows:
            state = gpu_state(provision, bool(maintenance), bool(is_allocated), bool(quarantined))
            for sku, count in self._gpus.get(node_id, (None, {}))[1].items():
                totals[(sku, state)] += count
        family = GaugeMetricFamily(
            "kiln_gpus",
            "GPUs in the nodes' stored inventories by SKU and state: available (idle, ready to deploy), "
            "allocated (a tenant's), quarantined (failed the GPU acceptance gate), unavailable (any other).",
            labels=["sku", "state"],
        )
        for (sku, state), count in sorted(totals.items()):
            family.add_metric([sku, state], count)
        return family

    def _read_gpus(self, conn: Any, node_ids: list[int]) -> None:
        """Read the ``gpus`` of these nodes' inventories (the database extracts them) into the memo."""
        gpus_column = NodeInventory.inventory["gpus"]
        for start in range(0, len(node_ids), _CHUNK):
            chunk = node_ids[start : start + _CHUNK]
            query = select(NodeInventory.node_id, NodeInventory.created_at, gpus_column).where(
                NodeInventory.node_id.in_(chunk)
            )
            for node_id, stored, gpus in conn.execute(query):
                self._gpus[node_id] = (stored, gpus_by_sku(gpus))

    def _heartbeats(self, conn: Any) -> Metric:
        now = utcnow()
        rows = conn.execute(
            select(Node.provision_state, Node.last_heartbeat_at).where(Node.last_heartbeat_at.is_not(None))
        )
        by_state: dict[str, list[float]] = {}
        for provision, beat in rows:
            if beat.tzinfo is None:
                beat = beat.replace(tzinfo=datetime.UTC)
            by_state.setdefault(_label(provision), []).append(max((now - beat).total_seconds(), 0.0))
        family = HistogramMetricFamily(
            "kiln_node_heartbeat_age_seconds",
            "Seconds since each node's agent last heartbeat (nodes that ever sent one), by provision state.",
            labels=["provision_state"],
        )
        for provision, ages in sorted(by_state.items()):
            ages.sort()
            buckets = [(str(bound), bisect.bisect_right(ages, bound)) for bound in HEARTBEAT_BUCKETS]
            buckets.append(("+Inf", len(ages)))
            family.add_metric([provision], buckets, sum(ages))
        return family

    def _conductors(self, conn: Any) -> Metric:
        family = GaugeMetricFamily(
            "kiln_conductors", "Registered conductors, online or not.", labels=["online"]
        )
        for online, count in conn.execute(select(Conductor.online, func.count()).group_by(Conductor.online)):
            family.add_metric([_label(bool(online))], count)
        return family
