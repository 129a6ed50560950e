"""kiln-conductor: registers itself, serves RPC, heartbeats, runs the periodic work, stops cleanly.

Threads: three RPC servers' (everything on kiln.conductor; the agents' methods alone on
kiln.conductor.agent, agent.conductor.rpc_guard; agents' heartbeats alone on
kiln.conductor.heartbeat with [conductor]heartbeat_workers threads, in a forked child process
when [conductor]heartbeat_process is on and the conductor opens its own transport), one that records this
conductor's liveness every [conductor]heartbeat_interval seconds (kept apart so slow periodic
work never makes it look dead), and one that runs the periodic passes (silent agents, dead
conductors, hash ring) as often.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import oslo_messaging as messaging
from oslo_config import cfg
from oslo_log import log as logging

from agent.common import config, exception, rpc
from agent.common.notify import Notifier
from agent.conductor import hash_ring, periodics, power_sync, rpc_guard, task_manager, timeouts
from agent.conductor.drivers import dnsmasq, driver_factory
from agent.conductor.heartbeat_worker import HeartbeatProcess
from agent.conductor.heartbeats import HeartbeatEndpoint
from agent.conductor.manager import ConductorManager
from agent.db import api as db_api
from agent.db import migration

LOG = logging.getLogger(__name__)
#: Seconds a stopping RPC server may take before shutdown goes on without it.
RPC_STOP_TIMEOUT = 2.0
#: Seconds ``stop()`` may take in all (systemd and operators expect a prompt exit on SIGTERM).
STOP_WITHIN = 4.0


class SchemaOutOfDate(RuntimeError):
    """The database schema is not at the revision this code needs."""


def check_schema() -> None:
    """Raise SchemaOutOfDate unless the database is at the newest migration."""
    current, head = migration.version(), migration.head()
    if current != head:
        raise SchemaOutOfDate(
            f"the database schema is at revision {current or 'none (empty database)'}, this kiln-conductor "
            f"needs {head}; run `kiln-dbsync upgrade` against {db_api.get_engine().url.render_as_string()}"
        )


class ConductorService:
    """One conductor process. ``start()`` returns once it serves; ``stop()`` undoes it."""

    def __init__(
        self,
        conf: cfg.ConfigOpts = cfg.CONF,
        transport: messaging.Transport | None = None,
        notifier: Notifier | None = None,
        topic: str = rpc.CONDUCTOR_TOPIC,
        manager: ConductorManager | None = None,
    ) -> None:
        config.register_opts(conf)
        self.conf = conf
        self.host: str = conf.conductor.host
        self.topic = topic
        self.manager = manager or ConductorManager(self.host)
        self.manager.heartbeat_topic = rpc.heartbeat_topic(topic)
        self.ring = hash_ring.HashRingManager()
        self.notifier = notifier or Notifier()
        self._own_transport = transport is None
        self.transport = transport
        self.stop_event = threading.Event()
        self._server: messaging.rpc.server.RPCServer | None = None
        self._heartbeat_server: messaging.rpc.server.RPCServer | None = None
        self._agent_server: messaging.rpc.server.RPCServer | None = None
        self.heartbeat_process: HeartbeatProcess | None = None
        self._threads: list[threading.Thread] = []
        self._live: frozenset[str] | None = None
        self._moved = True  # at start: take over what the ring gives us; drop what it gave others

    def _register(self) -> None:
        types = sorted(driver_factory.hardware_types())
        db_api.register_conductor(self.host, types, self.conf.conductor.conductor_group)
        LOG.info("Conductor %s registered with hardware types %s", self.host, ", ".join(types))

    def start(self) -> None:
        """Check the database, register, serve RPC and start the periodic threads."""
        check_schema()
        self._register()
        if self.transport is None and self.conf.conductor.heartbeat_process:
            # Fork first: the child must not inherit this process's connections or threads.
            self.heartbeat_process = HeartbeatProcess(
                self.conf,
                self.manager,
                self.manager.heartbeat_topic,
                self.host,
                self.conf.conductor.heartbeat_workers,
            )
            self.heartbeat_process.start()
        if self.transport is None:
            self.transport = rpc.get_transport(self.conf)
        self._server = rpc.get_server(self.transport, self.topic, self.host, [self.manager])
        self._server.start()
        gateway_topic = rpc_guard.agent_topic(self.topic)
        self._agent_server = rpc.get_server(
            self.transport, gateway_topic, self.host, [rpc_guard.AgentGateway(self.manager, gateway_topic)]
        )
        self._agent_server.start()
        if self.heartbeat_process is None:
            self._serve_heartbeats()
        self._spawn(self._heartbeat, self.conf.conductor.heartbeat_interval, "conductor-heartbeat")
        self._spawn(self.run_periodics, self.conf.conductor.heartbeat_interval, "conductor-periodics")
        if self.conf.conductor.sync_power_state_interval:
            self._spawn(self.sync_power, self.conf.conductor.sync_power_state_interval, "power-state-sync")
        LOG.info(
            "kiln-conductor %s serving RPC on topic %s, agent heartbeats on %s (%d threads, %s)",
            self.host,
            self.topic,
            self.manager.heartbeat_topic,
            self.conf.conductor.heartbeat_workers,
            f"process {self.heartbeat_process.process.pid}"
            if self.heartbeat_process and self.heartbeat_process.process
            else "in this process",
        )
        self.notifier.ready(f"conductor {self.host} serving")

    def _serve_heartbeats(self) -> None:
        """Serve the heartbeat topic with a few threads of this process."""
        self._heartbeat_server = rpc.get_server(
            self.transport, self.manager.heartbeat_topic, self.host, [HeartbeatEndpoint(self.manager)]
        )
        self._heartbeat_server.start(override_pool_size=self.conf.conductor.heartbeat_workers)

    def _spawn(self, func: Callable[[], None], interval: float, name: str) -> None:
        def loop() -> None:
            while not self.stop_event.wait(interval):
                try:
                    func()
                except Exception:  # noqa: BLE001 - a failed pass must not end the loop
                    LOG.exception("Periodic %s failed; retrying in %s s", name, interval)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _timed(self, name: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)``; with [conductor]periodic_timing_log, log how long it took."""
        if not self.conf.conductor.periodic_timing_log:
            return func(*args, **kwargs)
        started = time.monotonic()
        try:
            return func(*args, **kwargs)
        finally:
            LOG.info(
                "Periodic %s took %.4f s (every %d s)",
                name,
                time.monotonic() - started,
                self.conf.conductor.heartbeat_interval,
            )

    def _heartbeat(self) -> None:
        self._timed("conductor_liveness", self._touch)

    def _touch(self) -> None:
        try:
            db_api.touch_conductor(self.host)
        except exception.ConductorNotRegistered:
            LOG.warning("Conductor %s was missing from the database; registering again", self.host)
            self._register()

    def run_periodics(self) -> None:
        """One pass of the periodic work (the periodic thread calls this every heartbeat_interval)."""
        if self.heartbeat_process is not None:
            self.heartbeat_process.check(fallback=self._serve_heartbeats)
        # Heartbeats are batched in memory: write them before judging who went silent (the
        # heartbeat process writes its own every second).
        self._timed("flush_heartbeats", self.manager.flush_heartbeats)
        live = self._timed("refresh_ring", periodics.refresh_ring, self.ring, self._live)
        self._moved |= live != self._live
        self._live = live
        self._timed("dead_conductors", periodics.release_dead_conductors, self.host, self.ring)
        if self._moved:  # nodes came or left: take them over, drop the boot files of those gone
            self._moved = self._timed("ring_change", periodics.after_ring_change, self.host, self.ring)
        self._timed("heartbeat_timeouts", periodics.flag_missing_heartbeats, self.host, self.ring)
        self._timed("callback_timeouts", timeouts.check_callback_timeouts, self.host, ring=self.ring)
        self._timed("dnsmasq_tombstones", dnsmasq.prune_tombstones)

    def sync_power(self) -> None:
        """One power state sync pass (its own thread, every [conductor]sync_power_state_interval)."""
        self._timed("power_state_sync", power_sync.sync_power_states, self.host, self.ring)

    def stop(self) -> None:
        """Unregister, stop RPC and the threads, release the node locks still held; within STOP_WITHIN s."""
        deadline = time.monotonic() + STOP_WITHIN
        self.stop_event.set()
        self.notifier.stopping()
        if self.heartbeat_process is not None:
            self.heartbeat_process.ask_to_stop()  # the child winds down while this process does
        try:
            db_api.unregister_conductor(self.host)  # the ring moves this conductor's nodes at once
        except Exception as exc:  # noqa: BLE001 - shutdown goes on; the others will time it out
            LOG.warning("Could not unregister conductor %s: %s", self.host, exc)
        rpc.stop_servers(
            [s for s in (self._server, self._agent_server, self._heartbeat_server) if s is not None],
            RPC_STOP_TIMEOUT,
        )
        if self.heartbeat_process is not None:
            self.heartbeat_process.stop(max(0.5, deadline - time.monotonic() - 1.0))
        self.manager.stop_heartbeats()  # writes what is still batched
        # Work still running (a BMC that does not answer) is abandoned: its locks must not outlive us.
        task_manager.abandon_spawned_work()
        try:
            periodics.release_own_locks(self.host)
        except Exception as exc:  # noqa: BLE001 - the others release them once this one is gone
            LOG.warning("Conductor %s could not release its node locks: %s", self.host, exc)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic() - 0.5))
        if self._own_transport and self.transport is not None:
            self.transport.cleanup()
        LOG.info("kiln-conductor %s stopped", self.host)
