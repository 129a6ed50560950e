"""The agent's whole lifecycle in one process over the kombu memory transport.

The conductor side is tests.unit.node.recorder.RecordingConductor, or the real ConductorManager
on SQLite where the agent runs steps; the agent reads a copy of a fixture tree with the real collector.
Images come from a real http.server on 127.0.0.1 and land in a file that [agent]disk_map names.
"""

from __future__ import annotations

import copy
import fcntl
import os
import socket
import stat
import struct
import tempfile
import threading
import time

import pytest

from agent.common import exception, rpc
from agent.conductor.agent_client import AgentClient
from agent.db import api as db_api
from agent.inventory import lldp as lldp_parse
from agent.inventory.ironic import to_ironic
from agent.node.credentials import Credentials, TokenStore
from agent.node.daemon import Agent, lldp_changes, lookup_macs
from tests.unit.node.conftest import clone_tree, replace_file
from tests.unit.node.recorder import StepResultsSeen
from tests.unit.node.steps.helpers import (
    MIB,
    ImageServer,
    digest,
    make_disk,
    make_raw_image,
    read_range,
    table,
)
from tests.unit.schema import migrated_db

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")
HGX = os.path.join(FIXTURES, "hgx-h100")


@pytest.fixture
def fast(conf, topic):
    """Short waits and this test's conductor topic."""
    conf.override("conductor_topic", topic, "agent")
    conf.override("backoff_initial", 0.02, "agent")
    conf.override("backoff_max", 0.1, "agent")
    conf.override("watch_interval", 0.2, "agent")
    conf.override("use_nvml", False, "inventory")
    return conf


@pytest.fixture
def hgx_tree(tmp_path):
    """A private copy of the 8-GPU HGX H100 tree that a test may change."""
    if not os.path.isdir(HGX):
        pytest.skip(f"fixture tree {HGX} is missing")
    return clone_tree(HGX, str(tmp_path / "root"))


def test_lookup_macs_prefers_device_nics(inventory):
    assert lookup_macs(inventory) == ["52:54:00:aa:bb:01", "52:54:00:aa:bb:02"]
    for nic in inventory["nics"]:
        nic["pci_address"] = None
    assert lookup_macs(inventory) == [
        "02:42:ac:11:00:01",
        "52:54:00:aa:bb:01",
        "52:54:00:aa:bb:02",
        "7a:00:00:00:00:09",
    ]
    assert lookup_macs({"nics": [{"name": "x", "mac_address": "00:00:00:00:00:00"}, None]}) == []
    assert lookup_macs({}) == []


def test_full_lifecycle_on_the_hgx_tree(fast, transport, conductor, hgx_tree, tmp_path):
    agent = Agent(fast, root=hgx_tree, state_dir=str(tmp_path / "state"), transport=transport)
    agent.start()
    try:
        assert agent.ready.wait(30), "agent never became ready"
        assert conductor.wait_for(lambda r: len(r.of("heartbeat")) >= 2)

        (lookup,) = conductor.of("lookup")
        assert lookup["system_uuid"] == "9a5b2c00-1d2e-11ee-8000-3cecef123456"
        assert lookup["bootif"] == "a0:88:c2:4e:3f:10"
        assert "a0:88:c2:4e:3f:10" in lookup["macs"] and "3c:ec:ef:12:34:56" in lookup["macs"]

        (report,) = conductor.of("report_inventory")
        assert report["node_uuid"] == conductor.node_uuid
        assert report["changes"] is None
        assert len(report["inventory"]["gpus"]) == 8
        assert report["inventory"]["system"]["uuid"] == lookup["system_uuid"]

        beat = conductor.of("heartbeat")[0]
        assert beat["node_uuid"] == conductor.node_uuid and beat["status"]["reports_acked"] == 1

        store = TokenStore(str(tmp_path / "state"))
        assert store.load() == Credentials(conductor.node_uuid, conductor.token)
        assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600

        api = AgentClient(transport, timeout=10)
        assert api.ping({}, conductor.node_uuid, conductor.token)["node_uuid"] == conductor.node_uuid
        assert len(api.get_inventory({}, conductor.node_uuid, conductor.token)["gpus"]) == 8
        with pytest.raises(exception.InvalidAgentToken):
            api.ping({}, conductor.node_uuid, "not-the-token")

        # Pull the cable of one NIC: the periodic rescan sees it and reports what changed.
        nic = os.path.join(hgx_tree, "sys", "class", "net", "enp25s0np0")
        replace_file(os.path.join(nic, "carrier"), "0\n")
        assert conductor.wait_for(lambda r: len(r.of("report_inventory")) >= 2)
        change = conductor.of("report_inventory")[1]["changes"]
        assert change["added"] == {} and change["removed"] == {}
        assert change["changed"]["nics"]["enp25s0np0"]["carrier"] == {"old": True, "new": False}
    finally:
        agent.shutdown()
    assert agent.exit_code == 0


def _static(inventory: dict):
    return lambda: copy.deepcopy(inventory)


def test_restart_reuses_the_stored_token(fast, transport, conductor, inventory, tmp_path):
    state = str(tmp_path / "state")
    TokenStore(state).save(Credentials(conductor.node_uuid, conductor.token))
    conductor.token_issued = True  # a second lookup gets no token, as from Ironic
    fast.override("watch", False, "agent")
    agent = Agent(fast, state_dir=state, collector=_static(inventory), transport=transport)
    agent.start()
    try:
        assert agent.ready.wait(30)
        assert conductor.of("report_inventory")[0]["node_uuid"] == conductor.node_uuid
        assert conductor.rejected == []
    finally:
        agent.shutdown()


def test_no_token_anywhere_gives_up_after_the_lookup_attempts(
    fast, transport, conductor, inventory, tmp_path
):
    conductor.token_issued = True
    fast.override("lookup_max_attempts", 2, "agent")
    agent = Agent(fast, state_dir=str(tmp_path / "s"), collector=_static(inventory), transport=transport)
    agent.start()
    try:
        assert agent.stop_event.wait(30)
    finally:
        agent.shutdown()
    assert agent.exit_code == 1
    assert len(conductor.of("lookup")) == 2
    assert not agent.ready.is_set()


def test_refused_token_leads_to_a_new_lookup(fast, transport, conductor, inventory, tmp_path):
    state = str(tmp_path / "state")
    TokenStore(state).save(Credentials(conductor.node_uuid, "stale-token"))
    conductor.token_issued = True
    fast.override("watch", False, "agent")
    agent = Agent(fast, state_dir=state, collector=_static(inventory), transport=transport)
    # The first report carries the stale token and is refused; the conductor then re-issues one.
    agent.start()
    try:
        assert conductor.wait_for(lambda r: bool(r.rejected))
        conductor.token_issued = False  # operator reset the token: the next lookup gets one
        assert agent.ready.wait(30)
    finally:
        agent.shutdown()
    assert conductor.rejected == [("report_inventory", "stale-token")]
    assert len(conductor.of("lookup")) >= 2  # the first, then until the conductor re-issues a token
    assert TokenStore(state).load() == Credentials(conductor.node_uuid, conductor.token)


# --- steps through the daemon, against the real ConductorManager ---------------------------------


@pytest.fixture
def real_conductor(fast, transport, topic, tmp_path):
    """StepResultsSeen on a fresh SQLite database, served on this test's conductor topic."""
    for name, value in {"host": "node-test-conductor", "node_locked_retry_interval": 0.1}.items():
        fast.override(name, value, "conductor")
    migrated_db(tmp_path)
    db_api.register_conductor("node-test-conductor", ["fake-hardware"])
    manager = StepResultsSeen("node-test-conductor")
    srv = rpc.get_server(transport, topic, "node-test-conductor", [manager])
    srv.start()
    yield manager
    rpc.stop_server(srv, 5)
    db_api.dispose()


@pytest.fixture
def image_server(tmp_path):
    """A raw 8 MiB GPT image served by http.server on 127.0.0.1."""
    images = tmp_path / "images"
    images.mkdir()
    image = make_raw_image(str(images / "disk.raw"), 8 * MIB)
    server = ImageServer(str(images))
    yield server, image
    server.close()


def test_daemon_runs_write_image_and_reports_to_the_conductor(
    fast, transport, real_conductor, image_server, hgx_tree, tmp_path
):
    server, image = image_server
    disk = make_disk(str(tmp_path / "nvme0n1.img"), 16 * MIB)
    fast.override("disk_map", {"/dev/nvme0n1": disk}, "agent")
    fast.override("watch", False, "agent")
    agent = Agent(fast, root=hgx_tree, state_dir=str(tmp_path / "state"), transport=transport)
    assert agent.lldp is None  # a captured tree: the host's links are not this node's
    agent.start()
    try:
        assert agent.ready.wait(30), "agent never became ready"
        node = db_api.get_node(agent.creds.node_uuid)
        assert node.system_uuid == "9a5b2c00-1d2e-11ee-8000-3cecef123456"  # discovered by the real lookup
        sha = digest(image)
        api = AgentClient(transport, timeout=10)
        args = {"image_source": server.url("disk.raw"), "image_os_hash_algo": "sha256",
                "image_os_hash_value": sha, "image_disk_format": "raw"}  # fmt: skip
        started = api.run_step({}, node.uuid, agent.token(), "write_image", args)
        assert started["step"] == "write_image" and started["status"] == "running"

        (seen,) = real_conductor.wait_results(1)
        assert seen["node_uuid"] == node.uuid and seen["step"] == "write_image"
        result = seen["result"]
        assert result["command_id"] == started["command_id"]
        assert result["status"] == "succeeded", result["error"]
        assert result["error"] is None
        assert result["result"]["root_device"] == "/dev/nvme0n1"
        assert result["result"]["bytes"] == 8 * MIB
        assert result["result"]["checksum"] == f"sha256:{sha}"
        status = api.get_step_status({}, node.uuid, agent.token(), started["command_id"])
        assert status["status"] == "succeeded"

        # The disk holds the image: its data blocks byte for byte and its GPT with the root partition
        # (moved to the end of the bigger disk, as a deploy does).
        assert read_range(disk, 2 * MIB, 5 * MIB) == read_range(image, 2 * MIB, 5 * MIB)
        assert [p["name"] for p in table(disk)["partitions"]] == ["root"]
        with pytest.raises(exception.InvalidAgentToken):
            api.run_step({}, node.uuid, "forged", "write_image", args)
    finally:
        agent.shutdown()
    assert agent.exit_code == 0


def test_daemon_refuses_an_unknown_step_and_a_second_step_while_busy(
    fast, transport, conductor, inventory, tmp_path
):
    fast.override("watch", False, "agent")
    agent = Agent(fast, state_dir=str(tmp_path / "s"), collector=_static(inventory), transport=transport)
    release = threading.Event()
    agent.start()
    try:
        assert agent.ready.wait(30)
        agent.runner.steps["hold"] = lambda ctx, args: {"released": release.wait(30)}
        api = AgentClient(transport, timeout=10)
        with pytest.raises(exception.InvalidParameterValue, match="no step 'format_everything'"):
            api.run_step({}, conductor.node_uuid, conductor.token, "format_everything", {})
        first = api.run_step({}, conductor.node_uuid, conductor.token, "hold", {})
        with pytest.raises(exception.InvalidState, match="busy"):
            api.run_step({}, conductor.node_uuid, conductor.token, "get_root_device", {})
        release.set()
        assert conductor.wait_for(lambda r: r.of("step_result"))
        (sent,) = conductor.of("step_result")
        assert sent["step"] == "hold" and sent["result"]["command_id"] == first["command_id"]
        assert sent["result"]["status"] == "succeeded" and sent["result"]["result"] == {"released": True}
        nxt = api.run_step({}, conductor.node_uuid, conductor.token, "get_root_device", {})
        assert conductor.wait_for(lambda r: len(r.of("step_result")) == 2)
        second = conductor.of("step_result")[1]["result"]
        assert second["command_id"] == nxt["command_id"]
        assert second["result"]["root_device"] == "/dev/nvme0n1"
    finally:
        agent.shutdown()


# --- LLDP -------------------------------------------------------------------------------------------


def _tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!H", (kind << 9) | len(value)) + value


def _lldp_frame(port: str, system: str) -> bytes:
    chassis = bytes.fromhex("b83fd2000001")
    payload = (
        _tlv(1, b"\x04" + chassis)
        + _tlv(2, b"\x05" + port.encode())
        + _tlv(3, b"\x00\x78")
        + _tlv(5, system.encode())
        + _tlv(0, b"")
    )
    return lldp_parse.LLDP_MULTICAST + chassis + struct.pack("!H", lldp_parse.ETH_P_LLDP) + payload


@pytest.fixture
def lo_to_ourselves():
    """Hold lo's LLDP to this test: every process on the host hears frames sent on lo."""
    # pytest-xdist workers (and a second test run on the host) would otherwise hear each other's
    # frames: one host-wide lock, taken for the test's whole run.
    with open(os.path.join(tempfile.gettempdir(), "kiln-test-lldp-on-lo.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _raw_socket_on_lo() -> socket.socket:
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sock.bind(("lo", 0))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"raw packet sockets on lo are not allowed here: {exc}")
    return sock


def test_lldp_runs_only_where_the_links_are_this_inventorys(fast, transport, inventory, hgx_tree, tmp_path):
    fast.override("lldp_interfaces", [], "agent")
    tree = Agent(fast, root=hgx_tree, state_dir=str(tmp_path / "a"), transport=transport)
    given = Agent(fast, state_dir=str(tmp_path / "b"), collector=_static(inventory), transport=transport)
    assert tree.lldp is None and given.lldp is None
    fast.override("lldp_interfaces", ["eth7"], "agent")
    chosen = Agent(fast, root=hgx_tree, state_dir=str(tmp_path / "c"), transport=transport)
    assert chosen.lldp is not None and chosen.lldp.fixed == ["eth7"]
    fast.override("lldp", False, "agent")
    assert Agent(fast, root=hgx_tree, state_dir=str(tmp_path / "d"), transport=transport).lldp is None


@pytest.mark.usefixtures("lo_to_ourselves")
def test_lldp_heard_on_a_link_is_reported_as_a_change(fast, transport, conductor, inventory, tmp_path):
    sender = _raw_socket_on_lo()
    fast.override("watch", False, "agent")
    fast.override("lldp_interfaces", ["lo"], "agent")
    inventory["nics"].append({"name": "lo", "mac_address": "52:54:00:aa:bb:7f", "pci_address": None})
    agent = Agent(fast, state_dir=str(tmp_path / "s"), collector=_static(inventory), transport=transport)
    agent.start()
    try:
        assert agent.ready.wait(30)
        first = conductor.of("report_inventory")[0]["inventory"]
        assert "lo" not in first["lldp"]
        deadline = time.monotonic() + 30
        while not conductor.wait_for(lambda r: len(r.of("report_inventory")) >= 2, 0.5):
            assert time.monotonic() < deadline, "no LLDP change report"
            sender.send(_lldp_frame("Ethernet7", "leaf-1"))  # until the listener has its socket open
    finally:
        agent.shutdown()
        sender.close()
    report = conductor.of("report_inventory")[1]
    heard = report["inventory"]["lldp"]["lo"]
    assert heard["switch_port_id"] == "Ethernet7" and heard["switch_system_name"] == "leaf-1"
    assert heard["switch_chassis_id"] == "b8:3f:d2:00:00:01"
    assert "received_at" not in heard
    (added,) = report["changes"]["added"]["lldp"]
    assert added["name"] == "lo" and added["switch_port_id"] == "Ethernet7"
    lo = next(i for i in to_ironic(report["inventory"])["interfaces"] if i["name"] == "lo")
    assert lo["lldp"] == heard["raw"] and lo["lldp"][1] == [2, "05" + b"Ethernet7".hex()]


def test_lldp_changes_per_link():
    old = {"lldp": {"eth0": {"raw": [[2, "0561"]], "switch_port_id": "a"}, "eth1": {"raw": [[2, "0562"]]}}}
    new = {"lldp": {"eth0": {"raw": [[2, "0563"]], "switch_port_id": "c"}, "eth2": {"raw": [[2, "0564"]]}}}
    diff = lldp_changes(old, new)
    assert diff["added"] == {"lldp": [{"name": "eth2", "raw": [[2, "0564"]]}]}
    assert diff["removed"] == {"lldp": [{"name": "eth1", "raw": [[2, "0562"]]}]}
    assert diff["changed"]["lldp"]["eth0"]["switch_port_id"] == {"old": "a", "new": "c"}
    assert lldp_changes(new, new) == {"added": {}, "removed": {}, "changed": {}}
    assert lldp_changes(None, {"lldp": "garbled"}) == {"added": {}, "removed": {}, "changed": {}}


@pytest.mark.parametrize("named", ["own", "garbled"])
def test_heartbeats_go_to_the_topic_lookup_names(
    fast, transport, conductor, topic, inventory, tmp_path, named
):
    """Heartbeats go where lookup says; a topic that is no topic falls back to the conductors' own."""
    from tests.unit.node.recorder import RecordingConductor

    beats = RecordingConductor(conductor.node_uuid, conductor.token)
    server = rpc.get_server(transport, f"{topic}.heartbeat", "conductor-1", [beats])
    server.start()
    conductor.config_extra = {"heartbeat_topic": f"{topic}.heartbeat" if named == "own" else "../x y"}
    fast.override("watch", False, "agent")
    agent = Agent(fast, state_dir=str(tmp_path / "s"), collector=_static(inventory), transport=transport)
    agent.start()
    try:
        assert agent.ready.wait(30)
        where, other = (beats, conductor) if named == "own" else (conductor, beats)
        assert where.wait_for(lambda r: len(r.of("heartbeat")) >= 2, 10)
        assert other.of("heartbeat") == []
        assert where.of("heartbeat")[0]["status"]["reports_acked"] >= 1
    finally:
        agent.shutdown()
        rpc.stop_server(server, 5)


def test_shutdown_during_start_up_leaves_nothing_running(fast, transport, conductor, inventory, tmp_path):
    """Shutdown while the first report is in flight: heartbeat, RPC server and watcher never start."""
    in_report, release = threading.Event(), threading.Event()
    answer = conductor.report_inventory

    def held_report(ctxt, node_uuid, agent_token, inventory, changes=None):
        in_report.set()
        release.wait(30)
        return answer(ctxt, node_uuid, agent_token, inventory, changes)

    conductor.report_inventory = held_report
    agent = Agent(fast, state_dir=str(tmp_path / "s"), collector=_static(inventory), transport=transport)
    agent.start()
    assert in_report.wait(30)
    agent.shutdown()  # start-up waits for the report's answer
    release.set()
    assert conductor.wait_for(lambda r: len(r.of("report_inventory")) == 1, 10)
    for thread in agent._threads:
        thread.join(10)
    assert agent._heartbeater is None
    assert agent._server is None
    assert agent._watcher is None
    assert not agent.ready.is_set()


def test_gpu_steps_act_only_on_this_machines_own_hardware(fast, transport, hgx_tree, tmp_path):
    """A captured tree or a caller's collector is another machine: its agent's steps are not 'live'."""
    tree = Agent(fast, root=hgx_tree, state_dir=str(tmp_path / "a"), transport=transport)
    given = Agent(fast, root="/", state_dir=str(tmp_path / "b"), collector=dict, transport=transport)
    own = Agent(fast, root="/", state_dir=str(tmp_path / "c"), transport=transport)
    assert (tree.live, given.live, own.live) == (False, False, True)


@pytest.mark.usefixtures("lo_to_ourselves")
def test_lldp_wait_puts_the_switch_port_in_the_first_report(fast, transport, conductor, inventory, tmp_path):
    sender = _raw_socket_on_lo()
    fast.override("watch", False, "agent")
    fast.override("lldp_interfaces", ["lo"], "agent")
    fast.override("lldp_wait", 20, "agent")
    inventory["nics"].append({"name": "lo", "mac_address": "52:54:00:aa:bb:7f", "pci_address": None})
    agent = Agent(fast, state_dir=str(tmp_path / "s"), collector=_static(inventory), transport=transport)
    started = time.monotonic()
    agent.start()
    try:
        while not conductor.of("report_inventory"):
            assert time.monotonic() - started < 30, "no inventory report"
            sender.send(_lldp_frame("Ethernet9", "leaf-2"))  # until the listener has its socket open
            time.sleep(0.2)
        assert agent.ready.wait(30)
    finally:
        agent.shutdown()
        sender.close()
    first = conductor.of("report_inventory")[0]["inventory"]
    assert first["lldp"]["lo"]["switch_port_id"] == "Ethernet9"
    assert time.monotonic() - started < 20  # it stopped waiting once every link was heard


@pytest.mark.usefixtures("lo_to_ourselves")
def test_lldp_wait_gives_up_on_a_silent_link(fast, transport, conductor, inventory, tmp_path):
    fast.override("watch", False, "agent")
    fast.override("lldp_interfaces", ["lo"], "agent")
    fast.override("lldp_wait", 1, "agent")
    agent = Agent(fast, state_dir=str(tmp_path / "s"), collector=_static(inventory), transport=transport)
    started = time.monotonic()
    agent.start()
    try:
        assert agent.ready.wait(30)
    finally:
        agent.shutdown()
    assert time.monotonic() - started >= 1
    assert "lo" not in conductor.of("report_inventory")[0]["inventory"]["lldp"]
