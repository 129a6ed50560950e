"""Fixtures of the metrics tests: a migrated SQLite database, and scrapes parsed as Prometheus reads them."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.db import api as db_api
from tests.unit.schema import migrated_db


@pytest.fixture
def db(tmp_path):
    """A migrated SQLite database for this test."""
    engine = migrated_db(tmp_path)
    yield engine
    db_api.dispose()


def scrape(registry: CollectorRegistry) -> dict[tuple[str, frozenset], float]:
    """The registry's exposition, parsed: {(sample name, frozenset of label items): value}."""
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value; 0 when the registry has no such sample."""
    return samples.get((name, frozenset(labels.items())), 0.0)
