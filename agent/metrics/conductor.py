"""What only a conductor sees, as Prometheus metrics: provision phases, failures, RPC handling, drift.

The conductor calls three hooks: ``provision_transition`` (from TaskManager.process_event, the one
place provision states change), ``inventory_changes`` (when an agent's report with changes is
stored) and ``instrument_rpc_server`` (on each RPC server it starts). kiln-conductor serves them on
[conductor]metrics_port (0: not served). Its heartbeat process is a forked child that also moves
nodes along (deploy and clean steps resume on heartbeats), so when served, prometheus_client runs
in multiprocess mode: every process writes its values to files under one directory and the
conductor's endpoint adds them up (agent.metrics.multiproc.prepare runs before prometheus_client is
first imported).
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from oslo_log import log as logging
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from agent.common import states
from agent.metrics import multiproc

LOG = logging.getLogger(__name__)
REGISTRY = CollectorRegistry(auto_describe=True)

#: Provision states an operation passes through, and the operation they belong to.
PHASE_OPERATION: dict[str, str] = {
    states.DEPLOYING: "deploy",
    states.DEPLOYWAIT: "deploy",
    states.DEPLOYHOLD: "deploy",
    states.CLEANING: "clean",
    states.CLEANWAIT: "clean",
    states.CLEANHOLD: "clean",
    states.INSPECTING: "inspect",
    states.INSPECTWAIT: "inspect",
    states.VERIFYING: "verify",
    states.DELETING: "delete",
    states.ADOPTING: "adopt",
    states.RESCUING: "rescue",
    states.RESCUEWAIT: "rescue",
    states.UNRESCUING: "unrescue",
    states.SERVICING: "service",
    states.SERVICEWAIT: "service",
    states.SERVICEHOLD: "service",
}
#: Failure states and the operation that failed.
FAILED_OPERATION: dict[str, str] = {
    states.DEPLOYFAIL: "deploy",
    states.CLEANFAIL: "clean",
    states.INSPECTFAIL: "inspect",
    states.ADOPTFAIL: "adopt",
    states.RESCUEFAIL: "rescue",
    states.UNRESCUEFAIL: "unrescue",
    states.SERVICEFAIL: "service",
    states.ERROR: "delete",
}
#: Device lists an inventory diff names (agent.node.changes), and its kinds of change.
DRIFT_DEVICES = ("disks", "nics", "gpus", "nvswitches")
DRIFT_KINDS = ("added", "removed", "changed")

PHASE_SECONDS = Histogram(
    "kiln_provision_phase_duration_seconds",
    "Seconds a node spent in one provision state of an operation (deploying, wait call-back, cleaning, "
    "clean wait, ...), observed when it leaves it; result is failed when it left into a failure state.",
    ["operation", "phase", "result"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, float("inf")),
    registry=REGISTRY,
)
FAILURES = Counter(
    "kiln_provision_failures",
    "Operations that ended in a failure state (deploy failed, clean failed, ...), by operation.",
    ["operation"],
    registry=REGISTRY,
)
RPC_SECONDS = Histogram(
    "kiln_rpc_duration_seconds",
    "Seconds this conductor took to handle an RPC call or cast, by method; result is error when it raised.",
    ["method", "result"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf")),
    registry=REGISTRY,
)
INVENTORY_CHANGES = Counter(
    "kiln_inventory_changes",
    "Devices added, removed or changed in the inventories agents reported (hardware drift), by kind "
    "and device list.",
    ["kind", "device"],
    registry=REGISTRY,
)


def _aware(value: datetime.datetime) -> datetime.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)


def provision_transition(
    previous: str | None, new: str | None, entered_at: datetime.datetime | None, now: datetime.datetime
) -> None:
    """Observe a node leaving ``previous`` (entered at ``entered_at``) for ``new``; never raises."""
    try:
        _observe_transition(previous, new, entered_at, now)
    except Exception:  # noqa: BLE001 - a metric must never stop a node from moving on
        LOG.exception("Recording the move of a node from %s to %s in the metrics failed", previous, new)


def _observe_transition(
    previous: str | None, new: str | None, entered_at: datetime.datetime | None, now: datetime.datetime
) -> None:
    operation = PHASE_OPERATION.get(previous or "")
    failed = new in FAILED_OPERATION
    if operation is not None and entered_at is not None:
        seconds = max((_aware(now) - _aware(entered_at)).total_seconds(), 0.0)
        PHASE_SECONDS.labels(operation, previous, "failed" if failed else "ok").observe(seconds)
    if failed and new != previous:
        FAILURES.labels(FAILED_OPERATION[new]).inc()


def inventory_changes(changes: Any) -> None:
    """Count the devices an agent's inventory diff adds, removes or changes (anything else is ignored)."""
    if not isinstance(changes, dict):
        return
    for kind in DRIFT_KINDS:
        groups = changes.get(kind)
        if not isinstance(groups, dict):
            continue
        for device in DRIFT_DEVICES:
            found = groups.get(device)
            if isinstance(found, list | dict) and found:
                INVENTORY_CHANGES.labels(kind, device).inc(len(found))


def instrument_rpc_server(rpc_server: Any, endpoints: Iterable[Any]) -> None:
    """Time every message ``rpc_server`` dispatches, labelled by method (a method no endpoint has: other)."""
    methods = {
        name
        for endpoint in endpoints
        for name in dir(endpoint)
        if not name.startswith("_") and callable(getattr(endpoint, name, None))
    }
    dispatcher = rpc_server.dispatcher
    dispatch: Callable = dispatcher.dispatch

    def timed_dispatch(incoming: Any) -> Any:
        method = incoming.message.get("method") if isinstance(incoming.message, dict) else None
        label = method if method in methods else "other"
        started = time.perf_counter()
        try:
            result = dispatch(incoming)
        except BaseException:
            RPC_SECONDS.labels(label, "error").observe(time.perf_counter() - started)
            raise
        RPC_SECONDS.labels(label, "ok").observe(time.perf_counter() - started)
        return result

    dispatcher.dispatch = timed_dispatch


def serve(port: int, host: str) -> Any:
    """Serve the metrics of this conductor (and its heartbeat process) on host:port; return the server."""
    registry = REGISTRY
    if os.environ.get(multiproc.ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
