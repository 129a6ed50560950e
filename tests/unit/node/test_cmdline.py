"""The kernel command line the boot interfaces write, as kiln-agent reads it (real files, real HTTP)."""

from __future__ import annotations

import http.server
import os
import stat
import subprocess
import sys
import threading
import uuid

import pytest
from oslo_config import cfg

from agent.cmd import agent as agent_cmd
from agent.common import config
from agent.node import cmdline
from agent.node.backoff import Backoff, GaveUp
from agent.node.daemon import Agent
from tests.unit.node.conftest import clone_tree, replace_file

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")
NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
FAST = Backoff(0.01, 1.0, 0.02)
# What the ipxe boot interface renders, as iPXE hands it to the kernel (${mac:hexhyp} expanded).
IPXE_LINE = (
    "initrd=ramdisk nofb nomodeset console=tty0 console=ttyS0,115200n8 "
    f"kiln.node_uuid={NODE} kiln.config_url=http://10.9.0.1:8088/agent.conf kiln.api=http://10.9.0.1:6385 "
    "BOOTIF=01-52-54-00-aa-bb-01"
)


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (path -> bytes); a path mapped to an int answers that status."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        body = self.server.files.get(self.path)  # type: ignore[attr-defined]
        if isinstance(body, list):  # statuses to answer first, then the last item
            body = body.pop(0) if len(body) > 1 else body[0]
        if body is None or isinstance(body, int):
            self.send_response(body or 404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def web():
    """A real HTTP server on 127.0.0.1 serving a dict of files; yields (server, base URL)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    server.files = {}  # type: ignore[attr-defined]
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _dead_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/agent.conf"


# --- parsing -------------------------------------------------------------------------------------


def test_ipxe_rendered_line_gives_node_config_url_and_bootif() -> None:
    params = cmdline.parse_boot_params(IPXE_LINE)
    assert params.node_uuid == NODE
    assert params.config_url == "http://10.9.0.1:8088/agent.conf"
    assert params.transport_url is None
    assert params.bootif == "52:54:00:aa:bb:01"


def test_fixture_tree_cmdlines() -> None:
    vm = cmdline.read_boot_params(os.path.join(FIXTURES, "vm"))
    assert vm.bootif == "52:54:00:12:34:56"
    assert vm.node_uuid is None and vm.config_url is None and vm.transport_url is None
    assert vm.source.endswith("vm/proc/cmdline")
    hgx = cmdline.read_boot_params(os.path.join(FIXTURES, "hgx-h100"))
    assert hgx.bootif == "a0:88:c2:4e:3f:10"
    # Words after " -- " belong to init, not the kernel.
    fc = cmdline.parse_boot_params("quiet -- BOOTIF=01-52-54-00-00-00-01")
    assert fc.bootif is None


def test_missing_cmdline_file_gives_no_params(tmp_path) -> None:
    params = cmdline.read_boot_params(str(tmp_path))
    assert params == cmdline.BootParams(source=str(tmp_path / "proc" / "cmdline"))


def test_transport_url_and_quoted_values() -> None:
    params = cmdline.parse_boot_params(
        "quiet kiln.transport_url=rabbit://agent:pw@10.9.0.1:5672,agent:pw@10.9.0.2:5672/kiln "
        '"BOOTIF=01-AA-BB-CC-DD-EE-FF"'
    )
    assert params.transport_url == "rabbit://agent:pw@10.9.0.1:5672,agent:pw@10.9.0.2:5672/kiln"
    assert params.bootif == "aa:bb:cc:dd:ee:ff"
    assert cmdline.split_cmdline('a="b c" d') == ["a=b c", "d"]


@pytest.mark.parametrize(
    ("line", "name", "words"),
    [
        ("kiln.node_uuid=not-a-uuid", "kiln.node_uuid", ["not a UUID"]),
        (f"kiln.node_uuid={NODE}x", "kiln.node_uuid", ["not a UUID"]),
        ("kiln.node_uuid=", "kiln.node_uuid", ["no value"]),
        ("BOOTIF=01-52-54-00-aa-bb", "BOOTIF", ["a MAC address"]),
        ("BOOTIF=01-52-54-00-aa-bb-zz", "BOOTIF", ["a MAC address"]),
        ("BOOTIF=52:54:00:aa:bb:01", "BOOTIF", ["01-aa-bb-cc-dd-ee-ff"]),
        ("kiln.config_url=ftp://10.0.0.1/agent.conf", "kiln.config_url", ["http://"]),
        ("kiln.config_url=http:///agent.conf", "kiln.config_url", ["with a host"]),
        ("kiln.config_url=http://10.0.0.1:99999/a", "kiln.config_url", ["port"]),
        ("kiln.transport_url=http://10.0.0.1/", "kiln.transport_url", ["messaging driver", "rabbit"]),
        ("kiln.transport_url=rabbit:///", "kiln.transport_url", ["no broker host"]),
        ("kiln.transport_url=rabbit://u:hunter2@10.0.0.1:70000/", "kiln.transport_url", ["garbled broker"]),
        ("kiln.transport_url=rabbit://u:hunter2@:5672/", "kiln.transport_url", ["garbled broker"]),
    ],
)
def test_garbled_values_are_named(line: str, name: str, words: list[str]) -> None:
    with pytest.raises(cmdline.BootParamError) as err:
        cmdline.parse_boot_params(f"quiet {line} console=ttyS0", "/x/proc/cmdline")
    text = str(err.value)
    assert f"parameter {name}=" in text
    assert "/x/proc/cmdline" in text
    for word in words:
        assert word in text
    assert "hunter2" not in text


def test_conflicting_repeats_are_refused_equal_ones_kept() -> None:
    with pytest.raises(cmdline.BootParamError, match="kiln.node_uuid is given twice"):
        cmdline.parse_boot_params(f"kiln.node_uuid={NODE} kiln.node_uuid={uuid.uuid4()}")
    same = cmdline.parse_boot_params(f"kiln.node_uuid={NODE} kiln.node_uuid={NODE.upper()}")
    assert same.node_uuid == NODE


def test_mask_url_hides_passwords() -> None:
    assert cmdline.mask_url("rabbit://a:pw1@h1:5672,b:pw2@h2/v") == "rabbit://a:***@h1:5672,b:***@h2/v"
    assert cmdline.mask_url("rabbit://h1:5672/") == "rabbit://h1:5672/"


# --- kiln.config_url ---------------------------------------------------------------------------------


def test_fetch_config_writes_0600_and_checks_ini(web, tmp_path) -> None:
    server, base = web
    body = b"[DEFAULT]\ntransport_url = rabbit://agent:pw@10.9.0.1:5672/\n"
    server.files["/agent.conf"] = body
    state = tmp_path / "state"
    path = cmdline.fetch_config(f"{base}/agent.conf", str(state), backoff=FAST)
    assert path == str(state / cmdline.FETCHED_CONFIG)
    assert open(path, "rb").read() == body
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(state) == [cmdline.FETCHED_CONFIG]  # no temporary file left


def test_fetch_config_refuses_404_and_garbage_at_once(web, tmp_path) -> None:
    server, base = web
    with pytest.raises(cmdline.BootParamError, match=r"kiln.config_url=.*/missing.conf failed: HTTP 404"):
        cmdline.fetch_config(f"{base}/missing.conf", str(tmp_path), backoff=FAST)
    server.files["/bad.conf"] = b"transport_url = rabbit://x/\n"  # no section
    with pytest.raises(cmdline.BootParamError, match="is not an oslo.config ini file"):
        cmdline.fetch_config(f"{base}/bad.conf", str(tmp_path), backoff=FAST)
    assert server.hits == ["/missing.conf", "/bad.conf"]
    assert os.listdir(tmp_path) == []


def test_fetch_config_retries_server_errors_and_gives_up_on_silence(web, tmp_path) -> None:
    server, base = web
    server.files["/agent.conf"] = [503, 502, b"[DEFAULT]\n"]
    path = cmdline.fetch_config(f"{base}/agent.conf", str(tmp_path), attempts=5, backoff=FAST)
    assert open(path).read() == "[DEFAULT]\n"
    assert server.hits == ["/agent.conf"] * 3
    with pytest.raises(GaveUp, match="failed 2 times"):
        cmdline.fetch_config(_dead_url(), str(tmp_path / "b"), attempts=2, backoff=FAST, timeout=2)


# --- kiln-agent's start-up ------------------------------------------------------------------------------


@pytest.fixture
def agent_conf(tmp_path):
    """Write a local agent config (no transport_url unless given) and parse it into the global CONF."""
    root = clone_tree(os.path.join(FIXTURES, "vm"), str(tmp_path / "root"))
    written: list[list[str]] = []

    def make(cmdline_text: str, extra: str = "") -> list[str]:
        replace_file(os.path.join(root, "proc", "cmdline"), cmdline_text + "\n")
        path = tmp_path / "agent.conf"
        path.write_text(
            f"{extra}\n[agent]\nroot = {root}\nstate_dir = {tmp_path / 'state'}\nlookup_max_attempts = 2\n"
            "backoff_initial = 0.01\nbackoff_max = 0.02\nlookup_timeout = 2\n"
        )
        args = ["--config-file", str(path)]
        config.parse_args(args)
        written.append(args)
        return args

    yield make
    cfg.CONF([], project="kiln", default_config_files=[])


def test_configured_transport_url_wins_and_nothing_is_fetched(agent_conf, tmp_path) -> None:
    args = agent_conf(f"kiln.config_url={_dead_url()}", "[DEFAULT]\ntransport_url = kombu+memory:////\n")
    url, boot = agent_cmd.boot_config(args)
    assert url is None
    assert boot.config_url is not None
    assert cfg.CONF.transport_url == "kombu+memory:////"
    assert not (tmp_path / "state" / cmdline.FETCHED_CONFIG).exists()


def test_transport_url_from_the_command_line(agent_conf) -> None:
    args = agent_conf(f"quiet kiln.node_uuid={NODE} kiln.transport_url=rabbit://agent:pw@10.9.0.1:5672/")
    url, boot = agent_cmd.boot_config(args)
    assert url == "rabbit://agent:pw@10.9.0.1:5672/"
    assert boot.node_uuid == NODE
    assert boot.bootif is None


def test_config_url_is_loaded_after_the_local_files(agent_conf, web, tmp_path) -> None:
    server, base = web
    server.files["/agent.conf"] = (
        b"[DEFAULT]\ntransport_url = kombu+memory:////\n[agent]\nheartbeat_interval = 7\n"
    )
    args = agent_conf(f"kiln.node_uuid={NODE} kiln.config_url={base}/agent.conf BOOTIF=01-52-54-00-12-34-56")
    url, boot = agent_cmd.boot_config(args)
    assert url is None
    assert boot.bootif == "52:54:00:12:34:56"
    assert cfg.CONF.transport_url == "kombu+memory:////"
    assert cfg.CONF.agent.heartbeat_interval == 7
    assert cfg.CONF.agent.state_dir == str(tmp_path / "state")  # the local file still applies
    fetched = str(tmp_path / "state" / cmdline.FETCHED_CONFIG)
    assert cfg.CONF.config_file[-1] == fetched
    assert stat.S_IMODE(os.stat(fetched).st_mode) == 0o600


def test_config_url_without_transport_url_is_an_error(agent_conf, web) -> None:
    server, base = web
    server.files["/agent.conf"] = b"[agent]\nheartbeat_interval = 7\n"
    args = agent_conf(f"kiln.config_url={base}/agent.conf")
    with pytest.raises(cmdline.BootParamError, match=r"kiln.config_url=.* without \[DEFAULT\]transport_url"):
        agent_cmd.boot_config(args)


def _run_agent(conf_path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent.cmd.agent", "--config-file", str(conf_path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_kiln_agent_exits_2_naming_a_garbled_parameter(tmp_path) -> None:
    root = clone_tree(os.path.join(FIXTURES, "vm"), str(tmp_path / "root"))
    replace_file(os.path.join(root, "proc", "cmdline"), "quiet kiln.transport_url=rabbit://a:topsecret@:x/\n")
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nroot = {root}\nstate_dir = {tmp_path / 'state'}\n")
    done = _run_agent(conf)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "kiln-agent cannot start: kernel command line parameter kiln.transport_url=" in out
    assert f"{root}/proc/cmdline" in out
    assert "topsecret" not in out


def test_kiln_agent_exits_2_when_the_config_url_answers_404(tmp_path, web) -> None:
    _server, base = web
    root = clone_tree(os.path.join(FIXTURES, "vm"), str(tmp_path / "root"))
    replace_file(os.path.join(root, "proc", "cmdline"), f"kiln.config_url={base}/nope.conf\n")
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nroot = {root}\nstate_dir = {tmp_path / 'state'}\n")
    done = _run_agent(conf)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert f"kiln.config_url={base}/nope.conf failed: HTTP 404" in out


# --- the daemon uses BOOTIF and kiln.node_uuid ------------------------------------------------------------


@pytest.fixture
def fast(conf, topic):
    """Short waits, this test's conductor topic, no hardware watch."""
    conf.override("conductor_topic", topic, "agent")
    conf.override("backoff_initial", 0.02, "agent")
    conf.override("backoff_max", 0.1, "agent")
    conf.override("watch", False, "agent")
    return conf


def _inventory() -> dict:
    return {
        "system": {"uuid": None, "pxe_interface": None},
        "nics": [{"name": "eth0", "mac_address": "52:54:00:12:34:56", "pci_address": "0000:00:03.0"}],
        "errors": [],
    }


def test_lookup_sends_bootif_and_accepts_the_named_node(fast, transport, conductor, tmp_path) -> None:
    boot = cmdline.BootParams(node_uuid=conductor.node_uuid, bootif="52:54:00:12:34:56")
    agent = Agent(fast, state_dir=str(tmp_path), collector=_inventory, transport=transport, boot=boot)
    agent.start()
    try:
        assert agent.ready.wait(30)
    finally:
        agent.shutdown()
    assert conductor.of("lookup")[0]["bootif"] == "52:54:00:12:34:56"
    assert agent.exit_code == 0


def test_lookup_answering_another_node_stops_the_agent(fast, transport, conductor, tmp_path, caplog) -> None:
    boot = cmdline.BootParams(node_uuid=NODE, source="/proc/cmdline")
    agent = Agent(fast, state_dir=str(tmp_path), collector=_inventory, transport=transport, boot=boot)
    agent.start()
    try:
        assert agent.stop_event.wait(30)
    finally:
        agent.shutdown()
    assert agent.exit_code == 1
    assert len(conductor.of("lookup")) == 1  # not retried
    assert conductor.of("report_inventory") == []
    text = caplog.text
    assert f"found node {conductor.node_uuid}" in text and f"booted for node {NODE}" in text
