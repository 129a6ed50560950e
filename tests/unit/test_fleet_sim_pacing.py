"""The pure helpers of bench.fleet_agents: heartbeat pacing and percentiles."""

from __future__ import annotations

import math

import pytest

from bench.fleet_agents import pacing, percentile


def test_pacing_spreads_beats_evenly_over_the_interval():
    due = pacing(4, 30.0, 100.0)
    assert due == [100.0, 107.5, 115.0, 122.5]
    assert pacing(0, 30.0, 0.0) == []
    assert all(100.0 <= t < 130.0 for t in pacing(2500, 30.0, 100.0))


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 99) == 99
    assert percentile(values, 50) == 50
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert percentile([5.0], 99) == 5.0
    assert percentile([3, 1, 2], 50) == 2  # unsorted input
    assert math.isnan(percentile([], 99))


def test_percentile_refuses_a_q_outside_0_100():
    with pytest.raises(ValueError, match="q must lie in"):
        percentile([1], 101)
