"""kiln-api exits promptly on SIGTERM and SIGINT, even with a client's connection held open."""

from __future__ import annotations

import http.client
import signal
import subprocess
import uuid

import pytest

from tests.functional import procs


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_kiln_api_exits_on_a_signal(tmp_path, signum) -> None:
    if not procs.reachable(5672):
        pytest.skip("RabbitMQ is not listening on 127.0.0.1:5672 (rabbitmq-server -detached)")
    port = procs.free_port()
    sections = {
        "DEFAULT": {
            "transport_url": procs.RABBIT_URL,
            "control_exchange": f"kiln-test-{uuid.uuid4().hex[:8]}",
        },
        "database": {"connection": f"sqlite:///{tmp_path}/kiln.sqlite"},
        "api": {"host_ip": "127.0.0.1", "port": port},
    }
    conf = procs.write_conf(tmp_path / "kiln.conf", sections)
    procs.dbsync(conf)
    log = tmp_path / "api.log"
    api = procs.start("agent.cmd.api", conf, log)
    held = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        procs.wait_for(
            lambda: procs.http_answers(f"http://127.0.0.1:{port}/"), 30, "kiln-api to answer", (api,)
        )
        held.request("GET", "/v1")  # a keep-alive connection the client does not close
        assert held.getresponse().read()
        api.send_signal(signum)
        try:
            status = api.wait(5)
        except subprocess.TimeoutExpired:
            pytest.fail(f"kiln-api still runs 5 s after signal {signum.name}:\n{procs.read(log)[-2000:]}")
        assert status == 0, procs.read(log)[-2000:]
        text = procs.read(log)
        assert f"stopping on signal {int(signum)}" in text and "kiln-api stopped" in text
        with pytest.raises(OSError):
            procs.http_answers(f"http://127.0.0.1:{port}/")
    finally:
        held.close()
        procs.stop(api, 5)
