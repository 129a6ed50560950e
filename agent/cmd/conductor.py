"""kiln-conductor: the conductor service."""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log

from agent.common import config

CONF = cfg.CONF
LOG = log.getLogger(__name__)


def freeze_startup_objects() -> None:
    """Move what start-up allocated out of the garbage collector's sight.

    Modules, options, drivers and the SQLAlchemy mappers live as long as the process; scanning them
    in every full collection made pauses of 60-85 ms (measured under bench.conductor_bench), which
    every request in flight waits for. Frozen, a full collection scans only what came after.
    """
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    """Run kiln-conductor until SIGTERM or SIGINT; return the exit status."""
    log.register_options(CONF)
    config.parse_args(sys.argv[1:] if argv is None else argv)
    log.setup(CONF, "kiln-conductor")
    metrics_files = None
    if CONF.conductor.metrics_port:
        # Before anything imports prometheus_client: the forked heartbeat process's values must be
        # written where this process's endpoint adds them up.
        from agent.metrics import multiproc

        metrics_files = multiproc.prepare(CONF.conductor.metrics_dir)

    from sqlalchemy.exc import SQLAlchemyError

    from agent.conductor.service import ConductorService, SchemaOutOfDate
    from agent.db import api as db_api

    stop = threading.Event()

    def _on_signal(signum: int, _frame) -> None:
        LOG.info("Received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    from agent.common import rpc
    from agent.metrics import conductor as conductor_metrics

    metrics_server = None
    try:
        if metrics_files is not None:
            rpc.add_server_hook(conductor_metrics.instrument_rpc_server)
        db_api.configure()
        service = ConductorService(CONF)
        service.start()
    except (cfg.Error, ValueError, OSError, SchemaOutOfDate, SQLAlchemyError) as exc:
        LOG.error("kiln-conductor cannot start: %s", exc)
        _stop_metrics(None, metrics_files)
        return 2
    if metrics_files is not None:
        # After start: the heartbeat process is forked by then and inherits no listening socket.
        try:
            metrics_server = conductor_metrics.serve(CONF.conductor.metrics_port, CONF.conductor.metrics_host)
        except OSError as exc:
            LOG.error(
                "kiln-conductor cannot serve metrics on %s:%s: %s; change [conductor]metrics_port",
                CONF.conductor.metrics_host,
                CONF.conductor.metrics_port,
                exc,
            )
            service.stop()
            db_api.dispose()
            _stop_metrics(None, metrics_files)
            return 2
        LOG.info(
            "kiln-conductor metrics on http://%s:%s/metrics",
            CONF.conductor.metrics_host,
            CONF.conductor.metrics_port,
        )
    freeze_startup_objects()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        service.stop()
        db_api.dispose()
        _stop_metrics(metrics_server, metrics_files)
    exit_now_if_work_hangs()
    return 0


def _stop_metrics(server, files: tuple[str, bool] | None) -> None:
    """Stop the metrics endpoint and remove the metric files' directory if it was made for this run."""
    if server is not None:
        server.shutdown()
        server.server_close()
    if files is not None:
        from agent.metrics import multiproc

        multiproc.cleanup(*files)


def exit_now_if_work_hangs(status: int = 0) -> None:
    """Exit at once if threads still run (a BMC call that never returns), instead of joining them.

    At exit the interpreter joins every thread of the standard library's pools, daemon or not: one
    hung BMC call would keep a stopped conductor alive for its whole timeout. The node locks that
    work held were released by ``ConductorService.stop()``.
    """
    import logging

    busy = sorted(t.name for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive())
    if not busy:
        return
    LOG.info("kiln-conductor exits leaving %d thread(s) unfinished: %s", len(busy), ", ".join(busy))
    logging.shutdown()  # flush the log files, which os._exit would not
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
