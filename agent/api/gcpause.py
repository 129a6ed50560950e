"""Pause the cyclic garbage collector while a large response is built.

Rendering a page of 1,000 nodes allocates hundreds of thousands of short-lived containers, all
freed by reference counting; each allocation burst would still set off collections that walk every
live object of the process (a third of a page's time, measured by bench.fleet_sim). The collector
is off while at least one such request runs (a count shared by the server's threads), and a
generation-0 pass runs when the last one ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_active = 0
_was_enabled = True


@contextmanager
def paused() -> Iterator[None]:
    """Keep the cyclic collector off inside the block (nests, and across threads)."""
    global _active, _was_enabled
    with _lock:
        if _active == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _was_enabled:
                gc.enable()
                gc.collect(0)
