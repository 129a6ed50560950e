"""The schema moved forward under a running fleet: kiln-dbsync upgrade while the old kiln-api serves.

On the real PostgreSQL and MariaDB: the previous release (old_release.PREVIOUS_RELEASE) creates its
schema (alembic PREVIOUS_SCHEMA) with its own kiln-dbsync, its kiln-conductor and kiln-api run on
it and the test fills it through that API with nodes, ports and allocations. Then this tree's
kiln-dbsync upgrades it to head while a thread keeps reading and patching through the old API.
No request may fail with a 5xx during or after; the rows must be intact, the new columns at their
defaults; and this release's kiln-conductor and kiln-api then serve the same rows.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import sqlalchemy

from agent.db import migration
from tests.functional import procs
from tests.functional.db.conftest import SERVERS, _drop, _throwaway_database
from tests.functional.upgrade import old_release

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
NODES = 6

pytestmark = pytest.mark.skipif(
    not procs.reachable(5672), reason="RabbitMQ is not listening on 127.0.0.1:5672"
)


@pytest.fixture(scope="module")
def old_venv():
    """The previous release's venv (built into ~/.cache/kiln on first use)."""
    return old_release.release_venv()


@pytest.fixture(params=sorted(SERVERS))
def database(request):
    """A throwaway database on each real server; its URL."""
    admin, name = _throwaway_database(request.param)
    try:
        yield f"{SERVERS[request.param]}/{name}"
    finally:
        _drop(admin, request.param, name)


class Services:
    """kiln-conductor and kiln-api of one release (the old venv's, or this tree's) on one database."""

    def __init__(self, tmp: Path, db_url: str, venv: Path | None) -> None:
        self.tmp, self.venv, self.procs = tmp, venv, []
        self.port = procs.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        tag = "old" if venv else "new"
        self.conf = procs.write_conf(
            tmp / f"kiln-{tag}.conf",
            {
                "DEFAULT": {
                    "transport_url": procs.RABBIT_URL,
                    "control_exchange": f"kiln-ft-{uuid.uuid4().hex[:8]}",
                    "state_path": tmp,
                },
                "database": {"connection": db_url},
                "conductor": {"host": f"ft-{tag}-conductor", "heartbeat_interval": 2},
                "api": {"host_ip": "127.0.0.1", "port": self.port},
            },
        )
        self.tag = tag

    def _start(self, module: str, name: str) -> subprocess.Popen:
        log = self.tmp / f"{self.tag}-{name}.log"
        if self.venv:
            proc = old_release.start(self.venv, module, self.conf, log)
        else:
            proc = procs.start(module, self.conf, log)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        """Start the conductor, then the API once the conductor serves."""
        conductor = self._start("agent.cmd.conductor", "conductor")
        procs.wait_for_log(self.tmp / f"{self.tag}-conductor.log", "serving RPC", conductor, 90)
        api = self._start("agent.cmd.api", "api")
        procs.wait_for(lambda: procs.http_answers(self.url + "/"), 60, f"{self.url}/ to answer", (api,))

    def close(self) -> None:
        """Stop what runs."""
        for proc in reversed(self.procs):
            procs.stop(proc, 15)
        self.procs = []


def _call(method: str, url: str, json=None) -> requests.Response:
    return requests.request(method, url, json=json, headers=HEADERS, timeout=30)


def _ok(resp: requests.Response) -> dict:
    assert resp.status_code < 300, f"{resp.request.method} {resp.url}: {resp.status_code} {resp.text}"
    return resp.json() if resp.content else {}


def _fill(url: str) -> dict[str, list[str]]:
    """Nodes (with ports), available ones allocated; the UUIDs of each."""
    made: dict[str, list[str]] = {"nodes": [], "ports": [], "allocations": []}
    for i in range(NODES):
        node = _ok(
            _call(
                "POST",
                f"{url}/v1/nodes",
                {
                    "driver": "fake-hardware",
                    "name": f"gpu-{i}",
                    "resource_class": "gpu",
                    "extra": {"rack": f"r{i % 2}"},
                },
            )
        )
        made["nodes"].append(node["uuid"])
        port = _ok(
            _call(
                "POST", f"{url}/v1/ports", {"node_uuid": node["uuid"], "address": f"52:54:00:00:01:{i:02x}"}
            )
        )
        made["ports"].append(port["uuid"])
    for ident in made["nodes"][:2]:
        for verb in ("manage", "provide"):
            _ok(_call("PUT", f"{url}/v1/nodes/{ident}/states/provision", {"target": verb}))
            procs.wait_for(
                lambda ident=ident: (
                    _ok(_call("GET", f"{url}/v1/nodes/{ident}"))["target_provision_state"] is None
                ),
                60,
                f"{ident} {verb}",
            )
    for i in range(2):
        alloc = _ok(_call("POST", f"{url}/v1/allocations", {"resource_class": "gpu", "name": f"job-{i}"}))
        made["allocations"].append(alloc["uuid"])
    for ident in made["allocations"]:
        procs.wait_for(
            lambda ident=ident: _ok(_call("GET", f"{url}/v1/allocations/{ident}"))["state"] == "active",
            60,
            f"allocation {ident}",
        )
    return made


class Traffic(threading.Thread):
    """GETs and PATCHes through the API in a loop; every answer's status kept with what was asked."""

    def __init__(self, url: str, nodes: list[str]) -> None:
        super().__init__(name="api-traffic", daemon=True)
        self.url, self.nodes = url, nodes
        self.stop = threading.Event()
        self.answers: list[tuple[str, int, str]] = []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            node = self.nodes[i % len(self.nodes)]
            for method, path, body in (
                ("GET", "/v1/nodes?detail=true", None),
                ("GET", f"/v1/nodes/{node}", None),
                ("GET", "/v1/ports?detail=true", None),
                ("GET", "/v1/allocations", None),
                ("PATCH", f"/v1/nodes/{node}", [{"op": "add", "path": "/extra/beat", "value": str(i)}]),
            ):
                try:
                    resp = _call(method, self.url + path, body)
                    self.answers.append((f"{method} {path}", resp.status_code, resp.text[:300]))
                except requests.RequestException as exc:
                    self.answers.append((f"{method} {path}", 0, str(exc)))
            i += 1


def test_upgrade_under_a_serving_api(database, old_venv, tmp_path) -> None:
    old_release.run(old_venv, "-m", "agent.cmd.dbsync", "--database-url", database, "upgrade", cwd=tmp_path)
    engine = sqlalchemy.create_engine(database)
    try:
        assert migration.version(engine) == old_release.PREVIOUS_SCHEMA
        old = Services(tmp_path, database, old_venv)
        try:
            old.start()
            made = _fill(old.url)
            before = {
                kind: sorted(
                    _ok(_call("GET", f"{old.url}/v1/{kind}?detail=true"))[kind], key=lambda r: r["uuid"]
                )
                for kind in ("nodes", "ports", "allocations")
            }
            traffic = Traffic(old.url, made["nodes"])
            traffic.start()
            procs.wait_for(lambda: len(traffic.answers) >= 10, 60, "traffic before the upgrade")
            started = time.monotonic()
            sync = subprocess.run(
                [sys.executable, "-m", "agent.cmd.dbsync", "--config-file", str(old.conf), "upgrade"],
                cwd=procs.REPO,
                env=procs._env(),
                capture_output=True,
                text=True,
                timeout=300,
            )
            took = time.monotonic() - started
            assert sync.returncode == 0, sync.stdout + sync.stderr
            assert (
                f"Database at revision {migration.head()} (was {old_release.PREVIOUS_SCHEMA})" in sync.stdout
            )
            during = len(traffic.answers)
            procs.wait_for(lambda: len(traffic.answers) >= during + 10, 60, "traffic after the upgrade")
            traffic.stop.set()
            traffic.join(60)
            failed = [a for a in traffic.answers if not 200 <= a[1] < 300]
            assert not failed, f"{len(failed)} of {len(traffic.answers)} requests failed: {failed[:5]}"
            print(f"kiln-dbsync upgrade took {took:.1f} s under {len(traffic.answers)} requests")
            after = {
                kind: sorted(
                    _ok(_call("GET", f"{old.url}/v1/{kind}?detail=true"))[kind], key=lambda r: r["uuid"]
                )
                for kind in ("nodes", "ports", "allocations")
            }
        finally:
            old.close()
        _same_rows(before, after)
        assert migration.version(engine) == migration.head() and migration.schema_diff(engine) == []
        _new_columns_at_defaults(engine, made)

        # This release on the migrated database serves the same rows.
        new = Services(tmp_path, database, None)
        try:
            new.start()
            for kind in ("nodes", "ports", "allocations"):
                rows = _ok(_call("GET", f"{new.url}/v1/{kind}?detail=true"))[kind]
                assert sorted(r["uuid"] for r in rows) == sorted(made[kind])
            node = _ok(_call("GET", f"{new.url}/v1/nodes/{made['nodes'][0]}"))
            assert node["shard"] is None and node["instance_name"] is None and node["chassis_uuid"] is None
            assert _ok(_call("GET", f"{new.url}/v1/portgroups"))["portgroups"] == []
            patched = _ok(
                _call(
                    "PATCH",
                    f"{new.url}/v1/nodes/{made['nodes'][0]}",
                    [{"op": "add", "path": "/shard", "value": "s1"}],
                )
            )
            assert patched["shard"] == "s1"
        finally:
            new.close()
    finally:
        engine.dispose()


def _same_rows(before: dict, after: dict) -> None:
    """Everything but what the traffic changed (extra/beat, updated_at) is as it was."""
    for kind in before:
        assert [r["uuid"] for r in after[kind]] == [r["uuid"] for r in before[kind]], kind
        for old_row, new_row in zip(before[kind], after[kind], strict=True):
            for key, value in old_row.items():
                if key in ("updated_at", "links") or (key == "extra" and kind == "nodes"):
                    continue
                assert new_row.get(key) == value, (
                    f"{kind} {old_row['uuid']} {key}: {value!r} -> {new_row.get(key)!r}"
                )
    for old_row, new_row in zip(before["nodes"], after["nodes"], strict=True):
        assert new_row["extra"]["rack"] == old_row["extra"]["rack"]


def _new_columns_at_defaults(engine: sqlalchemy.Engine, made: dict) -> None:
    """The columns and tables the migrations after PREVIOUS_SCHEMA added hold their defaults."""
    with engine.connect() as conn:
        rows = conn.execute(
            sqlalchemy.text("SELECT instance_name, shard, firmware_interface, chassis_id FROM nodes")
        ).all()
        assert len(rows) == NODES and all(tuple(r) == (None, None, None, None) for r in rows)
        ports = conn.execute(sqlalchemy.text("SELECT internal_info, portgroup_id FROM ports")).all()
        assert len(ports) == NODES and all(tuple(p) == (None, None) for p in ports)
        for table in ("portgroups", "chassis", "runbooks", "inspection_rules", "turnover_records"):
            assert conn.execute(sqlalchemy.text(f"SELECT COUNT(*) FROM {table}")).scalar() == 0, table
        assert conn.execute(sqlalchemy.text("SELECT COUNT(*) FROM allocations")).scalar() == len(
            made["allocations"]
        )
