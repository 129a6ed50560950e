"""Backoff delays, jitter bounds and the retry loop."""

from __future__ import annotations

import random
import threading

import pytest

from agent.node.backoff import Backoff, GaveUp, Stopped, jittered, retry


def test_delays_double_up_to_the_cap_without_jitter():
    delays = Backoff(initial=1.0, factor=2.0, maximum=10.0, jitter=0.0).delays()
    assert [next(delays) for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_initial_above_max_starts_at_max():
    delays = Backoff(initial=5.0, maximum=3.0, jitter=0.0).delays()
    assert [next(delays) for _ in range(2)] == [3.0, 3.0]


def test_jittered_delays_stay_within_bounds():
    rng = random.Random(42)
    delays = Backoff(initial=10.0, factor=1.0, maximum=10.0, jitter=0.2).delays(rng)
    values = [next(delays) for _ in range(2000)]
    assert all(8.0 <= v <= 12.0 for v in values)
    assert min(values) < 8.2 and max(values) > 11.8  # both ends are reached, not a constant


@pytest.mark.parametrize(
    "kwargs, word",
    [({"initial": 0}, "positive"), ({"factor": 0.5}, "factor"), ({"jitter": 1.0}, "jitter")],
)
def test_bad_backoff_is_refused(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Backoff(**kwargs)


def test_jittered_refuses_bad_fraction():
    with pytest.raises(ValueError, match="jitter fraction"):
        jittered(10, 1.5)
    with pytest.raises(ValueError, match="interval"):
        jittered(-1, 0.1)


def test_retry_returns_after_failures():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("broker gone")
        return "ack"

    out = retry(flaky, what="report", stop=threading.Event(), backoff=Backoff(0.001, 1.0, 0.001, 0.0))
    assert out == "ack"
    assert len(calls) == 3


def test_retry_gives_up_after_attempts():
    def failing():
        raise TimeoutError("no conductor")

    with pytest.raises(GaveUp, match="lookup failed 4 times.*no conductor") as info:
        retry(failing, what="lookup", stop=threading.Event(), backoff=Backoff(0.001, jitter=0.0), attempts=4)
    assert isinstance(info.value.last, TimeoutError)


def test_retry_stops_when_stop_is_set():
    stop = threading.Event()
    calls = []

    def failing():
        calls.append(1)
        stop.set()
        raise ConnectionError("down")

    with pytest.raises(Stopped):
        retry(failing, what="report", stop=stop, backoff=Backoff(100.0))
    assert len(calls) == 1


def test_retry_lets_other_errors_through():
    def broken():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        retry(broken, what="x", stop=threading.Event(), backoff=Backoff(0.001), retry_on=(ConnectionError,))
