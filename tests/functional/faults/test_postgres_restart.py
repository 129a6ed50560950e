"""PostgreSQL restarted under API load: every request either succeeds or is answered 503 with a
message (never a 500 or a traceback) while it is down, and kiln-api and kiln-conductor recover on
their own once it is back; no request's change is half-applied or lost."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.functional import procs
from tests.functional.faults.private import PrivatePostgres
from tests.functional.faults.services import call, kiln_conf, start_api, start_conductor

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not procs.reachable(5672), reason="RabbitMQ is not listening on 127.0.0.1:5672"),
]


@pytest.fixture
def kiln(tmp_path):
    """A private PostgreSQL cluster with kiln-api and one kiln-conductor on it; (API URL, cluster)."""
    try:
        pg = PrivatePostgres()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    running = []
    try:
        pg.init()
        pg.start()
        port = procs.free_port()
        # The outage (6 s) stays under heartbeat_timeout, as it would under the default 60 s: a
        # longer one makes every conductor look dead until its next heartbeat once the DB is back.
        conf = kiln_conf(tmp_path, procs.RABBIT_URL, pg.url, port, {"conductor": {"heartbeat_timeout": 30}})
        procs.dbsync(conf)
        running.append(start_conductor(conf, "pg-conductor"))
        running.append(start_api(conf, port))
        yield f"http://127.0.0.1:{port}", pg, running
    finally:
        for proc in reversed(running):
            procs.stop(proc)
        pg.remove()


def _load(url: str, node: str, key: str, stop: threading.Event, answers: list) -> None:
    """Reads and writes through the API until ``stop``: (status, body, headers, what, when)."""
    i = 0
    while not stop.is_set():
        i += 1
        for what, method, path, body in (
            ("list", "GET", "/v1/nodes", None),
            ("show", "GET", f"/v1/nodes/{node}", None),
            ("patch", "PATCH", f"/v1/nodes/{node}", [{"op": "add", "path": f"/extra/{key}", "value": i}]),
        ):
            try:
                status, doc, headers = call(url + path, method, body, timeout=20)
            except OSError as exc:  # no answer at all is a failure too
                status, doc, headers = 0, {"error": repr(exc)}, {}
            answers.append((status, doc, headers, what, time.monotonic(), key, i))
        time.sleep(0.05)


def test_postgres_restart_under_load_fails_clearly_and_recovers(kiln) -> None:
    url, pg, running = kiln
    # One node per worker: concurrent PATCHes of one node's extra are last-writer-wins (as Ironic's).
    nodes = []
    for k in range(3):
        status, node, _ = call(
            url + "/v1/nodes", "POST", {"driver": "fake-hardware", "name": f"pg-fault-{k}"}
        )
        assert status == 201, node
        nodes.append(node["uuid"])
    answers: list = []
    stop = threading.Event()
    workers = [threading.Thread(target=_load, args=(url, nodes[k], f"w{k}", stop, answers)) for k in range(3)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(2)
        down_at = time.monotonic()
        pg.stop()
        time.sleep(6)
        up_at = time.monotonic()
        pg.start()
        # Recovery: the same processes answer again, without a restart.
        procs.wait_for(
            lambda: all(a[0] == 200 for a in answers[-6:]) and answers[-1][4] > time.monotonic() - 2,
            60,
            "the API to answer 200 again after PostgreSQL came back",
            tuple(running),
        )
        recovered_at = time.monotonic()
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)
    during = [a for a in answers if down_at + 1 < a[4] < up_at]
    assert during, "no request was answered while PostgreSQL was down"
    # A PATCH cut by the outage may leave its node locked a moment: 409 "locked", retryable.
    locked = [a for a in answers if a[0] == 409]
    for _status, doc, _headers, what, *_ in locked:
        assert what == "patch" and "locked" in doc["error_message"].lower(), doc
    odd = sorted({(a[0], a[3]) for a in answers if a[0] not in (200, 409, 503)})
    assert not odd, f"answers other than 200 and 503: {odd}"
    unavailable = [a for a in answers if a[0] == 503]
    assert {a[0] for a in during} == {503}, sorted({(a[0], a[3]) for a in during})
    for _status, doc, headers, what, *_ in unavailable:
        message = json.loads(doc["error_message"])["faultstring"]
        assert "database is not reachable" in message, (what, message)
        assert "Traceback" not in json.dumps(doc), (what, doc)
        assert headers.get("Retry-After") == "5", (what, headers)
    assert {a[3] for a in unavailable} == {"list", "show", "patch"}
    assert recovered_at - up_at < 30
    # Nothing lost: the node and the last acknowledged PATCH are there; a new node can be created.
    for k, uuid in enumerate(nodes):
        key = f"w{k}"
        status, shown, _ = call(url + f"/v1/nodes/{uuid}")
        assert status == 200
        acked = max(a[6] for a in answers if a[3] == "patch" and a[0] == 200 and a[5] == key)
        sent = max(a[6] for a in answers if a[3] == "patch" and a[5] == key)
        # The last acknowledged change is kept; a later one cut by the outage may or may not be.
        assert acked <= shown["extra"][key] <= sent, (key, shown["extra"], acked, sent)
    status, created, _ = call(url + "/v1/nodes", "POST", {"driver": "fake-hardware", "name": "after-restart"})
    assert status == 201, created
    assert all(proc.poll() is None for proc in running)
