"""The fleet collector's queries (GROUP BY, JSON extraction) on the real PostgreSQL and MariaDB."""

from __future__ import annotations

from tests.unit.metrics.test_cardinality import test_series_do_not_grow_with_the_fleet  # noqa: F401
from tests.unit.metrics.test_fleet import (  # noqa: F401
    registry,
    test_conductors_online_and_offline,
    test_gpu_counts_follow_new_inventories_and_deleted_nodes,
    test_gpus_by_sku_and_state_show_idle_allocated_and_quarantined,
    test_heartbeat_age_is_a_histogram_over_nodes,
    test_nodes_by_provision_state_power_maintenance_and_quarantine,
)
