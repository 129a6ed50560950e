"""The sample Grafana dashboard queries only metrics and labels Kiln exports."""

from __future__ import annotations

import json
import os
import re

from oslo_utils import uuidutils
from prometheus_client import CollectorRegistry

from agent.api import metrics as api_metrics
from agent.db import api as db_api
from agent.db import inventory as db_inventory
from agent.db.models import utcnow
from agent.metrics import conductor as conductor_metrics
from agent.metrics.fleet import FleetCollector
from tests.unit.metrics.conftest import scrape

DASHBOARD = os.path.join(os.path.dirname(__file__), "..", "..", "..", "etc", "kiln", "grafana-dashboard.json")
_SELECTOR = re.compile(r"\b(kiln_[a-z0-9_]+)\b(\{[^}]*\})?")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",)}


def _fleet_series(db) -> dict[str, set[str]]:
    """Sample names of the fleet collector on a database with a node of each kind, and their labels."""
    node = db_api.create_node({"driver": "fake-hardware", "instance_uuid": uuidutils.generate_uuid()})
    db_inventory.store_inventory(
        node.id, {"gpus": [{"pci_address": "0000:01:00.0", "sku": {"trait": "H100_SXM5_80GB"}}]}
    )
    db_api.update_node(node.uuid, {"last_heartbeat_at": utcnow()})
    db_api.register_conductor("cond-a", ["fake-hardware"])
    registry = CollectorRegistry()
    registry.register(FleetCollector())
    found: dict[str, set[str]] = {}
    for name, labels in scrape(registry):
        found.setdefault(name, set()).update(k for k, _v in labels)
    return found


def _metric_series(*metrics) -> dict[str, set[str]]:
    """Sample names of prometheus_client metrics (observed or not), and their labels."""
    found: dict[str, set[str]] = {}
    for metric in metrics:
        labels = set(metric._labelnames)
        for family in metric.describe():
            for suffix in _SUFFIXES.get(family.type, ("",)):
                found[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return found


def exported(db) -> dict[str, set[str]]:
    """Every sample name Kiln exports (kiln-api and kiln-conductor), with its label names."""
    return {
        **_fleet_series(db),
        **_metric_series(
            api_metrics.REQUEST_SECONDS,
            conductor_metrics.PHASE_SECONDS,
            conductor_metrics.FAILURES,
            conductor_metrics.RPC_SECONDS,
            conductor_metrics.INVENTORY_CHANGES,
        ),
    }


def _exprs(dashboard: dict) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_every_dashboard_query_names_exported_metrics_and_labels(db) -> None:
    with open(DASHBOARD, encoding="utf-8") as handle:
        dashboard = json.load(handle)
    series = exported(db)
    exprs = _exprs(dashboard)
    assert len(exprs) >= 10
    used = set()
    for title, expr in exprs:
        selectors = _SELECTOR.findall(expr)
        assert selectors, f"panel {title!r}: {expr} names no kiln metric"
        labels: set[str] = set()
        for name, matchers in selectors:
            assert name in series, f"panel {title!r}: {name} is not exported (exported: {sorted(series)})"
            wanted = set(_MATCHER.findall(matchers))
            assert wanted <= series[name], f"panel {title!r}: {name} has no label(s) {wanted - series[name]}"
            labels |= series[name]
            used.add(name)
        for group in _BY.findall(expr):
            names = {label.strip() for label in group.split(",") if label.strip()}
            assert names <= labels, f"panel {title!r}: by {names - labels} is no label of {expr}"
    # every family Kiln exports appears on the dashboard
    families = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in series}
    assert families <= {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in used}
