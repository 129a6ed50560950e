"""A minimal conductor process for the API's functional tests: RPC server + liveness heartbeats.

Usage: python -m tests.functional.api.conductor_proc --config-file FILE
(Used until agent/conductor/service.py provides kiln-conductor.)
"""

from __future__ import annotations

import signal
import sys
import threading

import oslo_messaging as messaging
from oslo_config import cfg

from agent.common import config, rpc
from agent.db import api as db_api
from agent.db import migration

CONF = cfg.CONF


def _manager(host: str):
    try:
        from agent.conductor.manager import ConductorManager

        return ConductorManager(host)
    except ImportError:
        from agent.conductor.api_endpoints import ApiEndpoints

        class _Manager(ApiEndpoints):
            target = messaging.Target(version="1.0")

            def __init__(self, host: str) -> None:
                self.host = host

        return _Manager(host)


def main(argv: list[str] | None = None) -> int:
    """Serve conductor RPC until SIGTERM."""
    config.parse_args(sys.argv[1:] if argv is None else argv)
    db_api.configure()
    migration.upgrade()
    host = CONF.conductor.host
    db_api.register_conductor(
        host, list(CONF.conductor.enabled_hardware_types), CONF.conductor.conductor_group
    )
    server = rpc.get_server(rpc.init(), rpc.CONDUCTOR_TOPIC, host, [_manager(host)])
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("conductor ready", flush=True)
    while not stop.wait(CONF.conductor.heartbeat_interval):
        db_api.touch_conductor(host)
    rpc.stop_server(server, 5)
    db_api.unregister_conductor(host)
    rpc.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
