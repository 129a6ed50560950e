"""Heartbeat jitter bounds and resilience to failed beats."""

from __future__ import annotations

import random
import threading

import pytest

from agent.node.heartbeat import Heartbeater


def test_next_delay_is_within_ten_percent():
    hb = Heartbeater(lambda: None, interval=30, jitter=0.1, rng=random.Random(7))
    delays = [hb.next_delay() for _ in range(5000)]
    assert all(27.0 <= d <= 33.0 for d in delays)
    assert min(delays) < 27.3 and max(delays) > 32.7
    assert 29.5 < sum(delays) / len(delays) < 30.5


def test_zero_jitter_is_exact():
    hb = Heartbeater(lambda: None, interval=12, jitter=0.0)
    assert {hb.next_delay() for _ in range(10)} == {12.0}


def test_non_positive_interval_is_refused():
    with pytest.raises(ValueError, match="heartbeat interval must be positive, got 0"):
        Heartbeater(lambda: None, interval=0)


def test_failed_beats_do_not_stop_the_heartbeat():
    done = threading.Event()
    calls = []

    def beat():
        calls.append(1)
        if len(calls) <= 2:
            raise ConnectionError("broker down")
        if len(calls) == 4:
            done.set()

    hb = Heartbeater(beat, interval=0.01, jitter=0.1)
    hb.start()
    try:
        assert done.wait(10)
    finally:
        hb.stop()
    assert hb.failed == 2
    assert hb.sent >= 2
    assert not hb.alive()
