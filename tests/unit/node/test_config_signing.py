"""Signed agent configuration: the agent accepts the conductor's signature and refuses anything else."""

# ruff: noqa: F811 - web and agent_conf are test_cmdline's fixtures

from __future__ import annotations

import os

import pytest
from oslo_config import cfg

from agent.cmd import agent as agent_cmd
from agent.common import config_signing
from agent.node import cmdline
from tests.unit.node.conftest import clone_tree, replace_file
from tests.unit.node.test_cmdline import FIXTURES, NODE, _run_agent, agent_conf, web  # noqa: F401 - fixtures

BODY = b"[DEFAULT]\ntransport_url = kombu+memory:////\n[agent]\nheartbeat_interval = 7\n"


@pytest.fixture
def key():
    return config_signing.generate_key()


def test_sign_then_verify_gives_the_body_back(key) -> None:
    signed = config_signing.sign_config(BODY, key)
    assert signed.startswith(BODY) and signed.splitlines()[-1].startswith(config_signing.MARKER)
    assert config_signing.verify_config(signed, key.public_key(), "test") == BODY


def test_unsigned_config_is_refused(key) -> None:
    with pytest.raises(config_signing.ConfigSignatureError, match="from test is not signed"):
        config_signing.verify_config(BODY, key.public_key(), "test")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s.replace(b"kombu+memory:////", b"rabbit://evil:pw@10.0.0.66//"),
        lambda s: b"[DEFAULT]\ndebug = true\n" + s,
        lambda s: s[:-10] + b"AAAAAAAAA\n",  # the signature itself
    ],
)
def test_tampered_config_is_refused(key, tamper) -> None:
    signed = config_signing.sign_config(BODY, key)
    with pytest.raises(config_signing.ConfigSignatureError, match="does not match its content"):
        config_signing.verify_config(tamper(signed), key.public_key(), "test")


def test_config_signed_by_another_key_is_refused(key) -> None:
    signed = config_signing.sign_config(BODY, config_signing.generate_key())
    with pytest.raises(config_signing.ConfigSignatureError, match="does not match"):
        config_signing.verify_config(signed, key.public_key(), "test")


def test_public_key_round_trips_through_the_kernel_parameter_and_pem(key) -> None:
    b64 = config_signing.public_b64(key.public_key())
    assert cmdline.check_config_key(b64) == b64
    for text in (b64, config_signing.public_pem(key.public_key()).decode()):
        parsed = config_signing.parse_public_key(text, "here")
        config_signing.verify_config(config_signing.sign_config(BODY, key), parsed, "test")
    with pytest.raises(cmdline.BootParamError, match="kiln.config_key"):
        cmdline.parse_boot_params("kiln.config_key=not-a-key")


def test_agent_loads_a_signed_config_with_the_key_from_the_command_line(agent_conf, web, key) -> None:
    server, base = web
    server.files["/agent.conf"] = config_signing.sign_config(BODY, key)
    b64 = config_signing.public_b64(key.public_key())
    args = agent_conf(f"kiln.node_uuid={NODE} kiln.config_url={base}/agent.conf kiln.config_key={b64}")
    url, boot = agent_cmd.boot_config(args)
    assert url is None and boot.config_key == b64
    assert cfg.CONF.transport_url == "kombu+memory:////"
    assert cfg.CONF.agent.heartbeat_interval == 7


def test_agent_refuses_a_tampered_config_with_the_key_from_a_file(agent_conf, web, key, tmp_path) -> None:
    server, base = web
    signed = config_signing.sign_config(BODY, key)
    server.files["/agent.conf"] = signed.replace(b"kombu+memory:////", b"kombu+memory:///evil")
    pub = tmp_path / "config.pub"
    pub.write_bytes(config_signing.public_pem(key.public_key()))
    args = agent_conf(f"kiln.config_url={base}/agent.conf", f"[agent]\nconfig_public_key_file = {pub}\n")
    with pytest.raises(config_signing.ConfigSignatureError, match="does not match its content"):
        agent_cmd.boot_config(args)
    assert not (tmp_path / "state" / cmdline.FETCHED_CONFIG).exists()


def test_kiln_agent_exits_2_on_an_unsigned_config(tmp_path, web, key) -> None:
    server, base = web
    server.files["/agent.conf"] = BODY
    root = clone_tree(os.path.join(FIXTURES, "vm"), str(tmp_path / "root"))
    b64 = config_signing.public_b64(key.public_key())
    replace_file(
        os.path.join(root, "proc", "cmdline"), f"kiln.config_url={base}/agent.conf kiln.config_key={b64}\n"
    )
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[agent]\nroot = {root}\nstate_dir = {tmp_path / 'state'}\n")
    done = _run_agent(conf)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert (
        "kiln-agent cannot start: the agent configuration from "
        f"kiln.config_url={base}/agent.conf is not signed" in out
    )
