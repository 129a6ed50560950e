"""The conductor's heartbeat process: agents' heartbeats served by a child with its own interpreter.

Thousands of agents heartbeat every few seconds; each cast costs the RPC library most of a
millisecond of CPU. In the conductor's own process that work would hold the GIL that lookups,
inventory reports, step results and API calls need. So kiln-conductor forks a child at start,
before it opens its own connections or threads, and the child serves the heartbeat topic alone:
its own broker connection, database connections and GIL, the conductor's manager (as forked) to
check tokens, batch the times and run the deploy hooks. Node locks are reservations in the
database under the conductor's name, so parent and child exclude each other as two threads would.

The child stops on SIGTERM (the parent sends it at stop) and when the parent disappears. If it
dies, the parent serves heartbeats in its own process from then on (``check``) instead of forking
a process that by then runs many threads.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable

from oslo_config import cfg
from oslo_log import log as logging

from agent.common import rpc
from agent.db import api as db_api

LOG = logging.getLogger(__name__)
#: Seconds between the child's checks that its parent still runs.
PARENT_CHECK_INTERVAL = 1.0
#: Seconds the child's RPC server may take to stop (the conductor stops within 5 s of SIGTERM).
CHILD_RPC_STOP_TIMEOUT = 2.0


def _serve(conf: cfg.ConfigOpts, manager, topic: str, host: str, workers: int, parent: int) -> None:
    """The child: serve ``topic`` with ``manager``'s heartbeat until SIGTERM or the parent is gone."""
    from agent.conductor.agent_endpoints import set_heartbeat_recorder
    from agent.conductor.heartbeats import HeartbeatEndpoint

    stop = threading.Event()
    if conf.conductor.heartbeat_process_nice:
        os.nice(conf.conductor.heartbeat_process_nice)  # latency-bound work of the conductor goes first
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stop.set())
    # The forked manager's heartbeat cache may hold a lock some parent thread had: start afresh.
    set_heartbeat_recorder(manager, None)
    transport = rpc.get_transport(conf)
    server = rpc.get_server(transport, topic, host, [HeartbeatEndpoint(manager)])
    server.start(override_pool_size=workers)
    gc.collect()
    gc.freeze()  # as kiln-conductor does after start: full collections skip what start-up made
    LOG.info("Heartbeat process %d of conductor %s serving topic %s", os.getpid(), host, topic)
    try:
        while not stop.wait(PARENT_CHECK_INTERVAL):
            if os.getppid() != parent:
                LOG.warning(
                    "Heartbeat process %d: the conductor (pid %d) is gone; stopping", os.getpid(), parent
                )
                break
    finally:
        rpc.stop_server(server, CHILD_RPC_STOP_TIMEOUT)
        manager.stop_heartbeats()  # write what is batched
        transport.cleanup()
        db_api.dispose()


class HeartbeatProcess:
    """A forked child serving the heartbeat topic, as ConductorService starts and stops it."""

    def __init__(self, conf: cfg.ConfigOpts, manager, topic: str, host: str, workers: int) -> None:
        self.conf = conf
        self.manager = manager
        self.topic = topic
        self.host = host
        self.workers = workers
        self.process: multiprocessing.process.BaseProcess | None = None
        self.stopping = False

    def start(self) -> None:
        """Fork the child (call before this process opens connections or starts threads)."""
        ctx = multiprocessing.get_context("fork")
        self.process = ctx.Process(
            target=_serve,
            args=(self.conf, self.manager, self.topic, self.host, self.workers, os.getpid()),
            name=f"kiln-conductor-heartbeats-{self.host}",
            daemon=False,
        )
        self.process.start()
        LOG.info(
            "Conductor %s: heartbeats on %s served by process %d", self.host, self.topic, self.process.pid
        )

    def alive(self) -> bool:
        """Say whether the child runs."""
        return self.process is not None and self.process.is_alive()

    def check(self, fallback: Callable[[], None]) -> bool:
        """If the child died (and no stop was asked), log it and call ``fallback`` once; say if it did."""
        if self.stopping or self.process is None or self.process.is_alive():
            return False
        LOG.error(
            "The heartbeat process of conductor %s exited with status %s; heartbeats are served in the "
            "conductor's own process from now on",
            self.host,
            self.process.exitcode,
        )
        self.process = None
        fallback()
        return True

    def ask_to_stop(self) -> None:
        """SIGTERM the child without waiting for it (``stop()`` then waits), so both stop side by side."""
        self.stopping = True
        if self.process is not None and self.process.is_alive():
            self.process.terminate()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the child and wait for it (it writes its batched heartbeats first); kill it if it hangs."""
        self.stopping = True
        process, self.process = self.process, None
        if process is None:
            return
        if process.is_alive():
            process.terminate()
            process.join(timeout)
        if process.is_alive():
            LOG.warning("Heartbeat process %d did not stop within %.0f s; killing it", process.pid, timeout)
            process.kill()
            process.join(5.0)
