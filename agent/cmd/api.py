"""kiln-api: serve the Ironic-compatible REST API (default 0.0.0.0:6385) with cheroot's threaded server."""

from __future__ import annotations

import gc
import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log

from agent.common import config

CONF = cfg.CONF
LOG = log.getLogger(__name__)
#: Seconds kiln-api gives requests in flight to finish after SIGTERM/SIGINT.
STOP_TIMEOUT = 5


def make_server(app=None):
    """Return a cheroot WSGI server for the app on [api]host_ip:[api]port (not started)."""
    from cheroot import wsgi

    from agent.api import app as api_app

    return wsgi.Server(
        (CONF.api.host_ip, CONF.api.port),
        app or api_app.build_app(),
        numthreads=CONF.api.api_workers,
        server_name="kiln-api",
        request_queue_size=128,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse options, connect to the database and the message bus, and serve until SIGTERM/SIGINT."""
    log.register_options(CONF)
    config.parse_args(sys.argv[1:] if argv is None else argv)
    log.setup(CONF, "kiln-api")
    from agent.api import metrics
    from agent.common import rpc
    from agent.db import api as db_api

    db_api.configure()
    rpc.init()
    server = make_server()
    metrics.warm_up()
    # Everything loaded so far lives as long as the process: keep the collector from walking it
    # again on every full collection (a large node list is otherwise slowed by them).
    gc.freeze()
    stopping = threading.Event()

    def _stop(signum, _frame) -> None:
        LOG.info("kiln-api stopping on signal %s", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.prepare()
    LOG.info(
        "kiln-api serving on http://%s:%s/ (auth %s)",
        CONF.api.host_ip,
        server.bind_addr[1],
        CONF.auth_strategy,
    )
    # cheroot's stop() must not run inside a signal handler that interrupted serve() in the same
    # thread (it waits for that very loop, so the process kept serving): serve in a thread, and
    # stop from here once a signal has been seen.
    serving = threading.Thread(target=server.serve, name="kiln-api-serve", daemon=True)
    serving.start()
    try:
        while serving.is_alive() and not stopping.wait(0.5):
            pass
    finally:
        server.stop()
        serving.join(STOP_TIMEOUT)
        rpc.cleanup()
    if not stopping.is_set():
        LOG.error("kiln-api's server loop ended without a stop signal")
        return 1
    LOG.info("kiln-api stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
