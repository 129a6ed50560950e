"""kiln-conductor and kiln-api as real processes (RabbitMQ, SQLite) for the tests that drive the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.functional import procs


@contextmanager
def conductor_and_api(tmp: Path, host: str, extra: dict[str, dict]) -> Iterator[str]:
    """Start a conductor named ``host`` and kiln-api with ``extra`` config sections; yield the API URL."""
    if not procs.reachable(5672):
        pytest.skip("RabbitMQ is not listening on 127.0.0.1:5672 (rabbitmq-server -detached)")
    port = procs.free_port()
    sections = {
        "DEFAULT": {
            "transport_url": procs.RABBIT_URL,
            "control_exchange": f"kiln-test-{uuid.uuid4().hex[:8]}",
            "state_path": tmp,
        },
        "database": {"connection": f"sqlite:///{tmp}/kiln.sqlite"},
        "conductor": {"host": host, "heartbeat_interval": 2},
        "api": {"host_ip": "127.0.0.1", "port": port},
    }
    for name, options in extra.items():
        sections[name] = {**sections.get(name, {}), **options}
    conf = procs.write_conf(tmp / "kiln.conf", sections)
    procs.dbsync(conf)
    conductor = procs.start("agent.cmd.conductor", conf, tmp / "conductor.log")
    api = None
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_for_log(tmp / "conductor.log", f"kiln-conductor {host} serving RPC", conductor)
        api = procs.start("agent.cmd.api", conf, tmp / "api.log")
        procs.wait_for(lambda: procs.http_answers(url + "/"), 30, f"{url}/ to answer", (api,))
        yield url
    finally:
        for proc in (api, conductor):
            if proc is not None:
                procs.stop(proc, 15)
