"""Fuzzing the conductor's agent-facing RPC methods with malformed payloads (hypothesis).

lookup, heartbeat, report_inventory and step_result are called as oslo.messaging's dispatcher calls
them, with JSON values of the wrong type, missing keys and huge values, on a real SQLite database.
Each must return or raise a Kiln exception (which the agent gets back by name), never an
AttributeError, TypeError, KeyError or the like, and a rejected call changes nothing.
"""

from __future__ import annotations

import copy
import json
import os

import oslo_messaging as messaging
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oslo_config import cfg

from agent.common import config, exception
from agent.conductor.heartbeats import HeartbeatEndpoint
from agent.conductor.manager import ConductorManager
from agent.db import api as db_api
from agent.inventory.collect import collect
from tests.unit.schema import migrated_db

CONF = cfg.CONF
HOST = "fuzz-conductor"
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")
EXAMPLES = int(os.environ.get("KILN_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    derandomize=not os.environ.get("KILN_FUZZ_RANDOM"),
)

TEXT = st.one_of(
    st.sampled_from(["", "x" * 300, "\x00", "../x", "52:54:00:12:34:56", "01-52-54-00-12-34-56", "é"]),
    st.text(max_size=30),
)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False),
    TEXT,
)
JSONISH = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=10,
)
HUGE = st.sampled_from(["x" * 200_000, 10**40, -(10**40), [0] * 20_000, 1e308])
DEEP = st.integers(min_value=50, max_value=400).map(lambda n: json.loads("[" * n + "]" * n))
ANY = st.one_of(JSONISH, HUGE, DEEP)


@pytest.fixture(scope="module")
def inventory() -> dict:
    """The hgx-h100 fixture's inventory as kiln-agent sends it (JSON round trip)."""
    return json.loads(json.dumps(collect(os.path.join(FIXTURES, "hgx-h100"), use_nvml=False)))


@pytest.fixture
def agent(tmp_path, inventory):
    """A manager on a fresh database, one discovered node with its inventory: (manager, uuid, token)."""
    config.register_opts(CONF)
    CONF([], project="kiln")
    CONF.set_override("host", HOST, group="conductor")
    CONF.set_override("node_locked_retry_attempts", 1, group="conductor")
    CONF.set_override("enable_discovery", True, group="conductor")
    migrated_db(tmp_path)
    db_api.register_conductor(HOST, ["fake-hardware"])
    manager = ConductorManager(HOST)
    macs = [n["mac_address"] for n in inventory["nics"] if n.get("mac_address")]
    answer = manager.lookup({}, macs, inventory["system"]["uuid"], None)
    uuid, token = answer["node"]["uuid"], answer["agent_token"]
    manager.report_inventory({}, uuid, token, inventory, None)
    CONF.set_override("enable_discovery", False, group="conductor")  # unknown MACs enroll nothing
    try:
        yield manager, uuid, token
    finally:
        manager.stop_heartbeats()
        db_api.dispose()
        for name in ("host", "node_locked_retry_attempts", "enable_discovery"):
            CONF.clear_override(name, group="conductor")


def _state() -> str:
    """Every node, port and stored inventory, as one comparable text."""
    nodes = []
    for node in db_api.list_nodes():
        row = {c: getattr(node, c) for c in ("uuid", "name", "provision_state", "properties", "extra",
                                             "driver_internal_info", "agent_token_hash", "system_uuid",
                                             "last_error", "fault", "reservation", "traits")}  # fmt: skip
        row["ports"] = sorted(p.address for p in db_api.list_ports(node_id=node.id))
        row["inventory"] = db_api.get_node_inventory(node.id)
        nodes.append(row)
    return json.dumps(nodes, sort_keys=True, default=str)


def _call(method, *args) -> object:
    """Call an endpoint; only a Kiln exception may come out. Returns the answer or the exception."""
    try:
        try:
            return method({}, *args)
        except messaging.ExpectedException as wrapped:  # how an endpoint marks the errors its caller gets
            raise wrapped.exc_info[1] from None
    except exception.KilnException as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        return exc
    except Exception as exc:  # noqa: BLE001 - what this test is looking for
        pytest.fail(f"{method.__name__} raised {type(exc).__name__}: {exc!s:.300} (arguments {args!r:.300})")


def _check_unchanged_when_rejected(result, before: str) -> None:
    if isinstance(result, exception.KilnException):
        assert _state() == before, f"rejected with {result!s:.200}, yet the database changed"


def _paths(doc, prefix=()) -> list[tuple]:
    """Every key/index path in a JSON document."""
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc[:3]):
            found += _paths(value, (*prefix, i))
    return found


def _mutate(doc: dict, path: tuple, action: str, value) -> object:
    """``doc`` with the value at ``path`` replaced by ``value`` or deleted (``action``)."""
    if not path:
        return value
    doc = copy.deepcopy(doc)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@FUZZ
@given(macs=st.one_of(ANY, st.lists(TEXT, max_size=4)), system_uuid=ANY, bootif=ANY)
def test_lookup(agent, macs, system_uuid, bootif) -> None:
    manager, _uuid, _token = agent
    before = _state()
    result = _call(manager.lookup, macs, system_uuid, bootif)
    _check_unchanged_when_rejected(result, before)


@FUZZ
@given(data=st.data(), own_uuid=st.booleans(), own_token=st.booleans())
def test_heartbeat(agent, data, own_uuid, own_token) -> None:
    manager, uuid, token = agent
    node_uuid = uuid if own_uuid else data.draw(ANY)
    agent_token = token if own_token else data.draw(ANY)
    status = data.draw(ANY)
    before = _state()
    for endpoint in (manager, HeartbeatEndpoint(manager)):
        result = _call(endpoint.heartbeat, node_uuid, agent_token, status)
        _check_unchanged_when_rejected(result, before)
    manager.flush_heartbeats()


@FUZZ
@given(data=st.data(), changes=st.one_of(st.none(), ANY))
def test_report_inventory(agent, inventory, data, changes) -> None:
    manager, uuid, token = agent
    paths = _paths(inventory)
    path = data.draw(st.sampled_from(paths))
    action = data.draw(st.sampled_from(["replace", "delete"])) if path else "replace"
    broken = _mutate(inventory, path, action, data.draw(ANY) if action == "replace" else None)
    before = _state()
    result = _call(manager.report_inventory, uuid, token, broken, changes)
    _check_unchanged_when_rejected(result, before)


@FUZZ
@given(step=ANY, result=ANY, own_token=st.booleans())
def test_step_result(agent, step, result, own_token) -> None:
    manager, uuid, token = agent
    before = _state()
    answer = _call(manager.step_result, uuid, token if own_token else "wrong", step, result)
    _check_unchanged_when_rejected(answer, before)
