"""kiln-broker on the machine's RabbitMQ: setup makes the conductor, API and agent accounts, whose
transport URLs work and whose permissions differ; keygen and sign-config give what the agent checks."""

from __future__ import annotations

import configparser
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import amqp
import pytest

from agent.common import config_signing
from tests.functional import procs
from tests.functional.broker.test_agent_accounts import _amqp, _refused

pytestmark = [
    pytest.mark.skipif(not procs.reachable(5672), reason="RabbitMQ is not listening on 127.0.0.1:5672"),
    pytest.mark.skipif(procs.RABBITMQCTL is None, reason="rabbitmqctl is not installed"),
]


def _kiln_broker(conf: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent.cmd.broker", "--config-file", str(conf), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(procs.REPO)},
    )


def _url(path: Path) -> str:
    parser = configparser.ConfigParser()
    parser.read(path)
    return parser["DEFAULT"]["transport_url"]


def test_setup_keygen_and_sign_config(tmp_path) -> None:
    vhost = f"kiln-cli-{uuid.uuid4().hex[:10]}"
    conf = procs.write_conf(tmp_path / "kiln.conf", {"broker": {"vhost": vhost, "agent_accounts": "shared"}})
    out = tmp_path / "accounts"
    try:
        done = _kiln_broker(
            conf, "setup", "--broker-url", f"rabbit://127.0.0.1:5672/{vhost}", "--out-dir", str(out)
        )
        assert done.returncode == 0, done.stderr
        for user in ("kiln-conductor", "kiln-api", "kiln-agent"):
            assert f"{user}: account made on vhost {vhost}" in done.stdout
            assert stat.S_IMODE(os.stat(out / f"{user}.conf").st_mode) == 0o600
        listed = _kiln_broker(conf, "list")
        assert {"kiln-conductor", "kiln-api", "kiln-agent"} <= set(listed.stdout.split()), listed.stderr
        assert (
            "password" not in done.stdout.lower()
            and _url(out / "kiln-api.conf").split("@")[0] not in done.stdout
        )

        conductor = _amqp(_url(out / "kiln-conductor.conf"))
        channel = conductor.channel()  # the conductor's account may make what the conductors serve
        channel.exchange_declare("kiln", "topic", durable=False, auto_delete=False)
        channel.queue_declare("kiln.conductor", auto_delete=False)
        conductor.collect()
        api = _amqp(_url(out / "kiln-api.conf"))
        try:
            api.channel().basic_publish(amqp.Message("{}"), exchange="kiln", routing_key="kiln.conductor")
            _refused(api, lambda ch: ch.basic_consume("kiln.conductor"))  # the API never reads conductor work
        finally:
            api.collect()
        agent = _amqp(_url(out / "kiln-agent.conf"))
        try:
            _refused(
                agent,
                lambda ch: ch.basic_publish(
                    amqp.Message("{}"), exchange="kiln", routing_key="kiln.conductor"
                ),
            )
        finally:
            agent.collect()
        assert "conductor_topic = kiln.conductor.agent" in (out / "kiln-agent.conf").read_text()

        key_path = tmp_path / "signing.pem"
        made = _kiln_broker(conf, "keygen", str(key_path))
        assert made.returncode == 0 and made.stdout.startswith("kiln.config_key="), made.stderr
        public = config_signing.parse_public_key(made.stdout.strip().split("=", 1)[1], "keygen")
        with open(conf, "a", encoding="utf-8") as f:
            f.write(f"config_signing_key_file = {key_path}\n")  # the [broker] section is the last one
        signed = tmp_path / "agent.conf.signed"
        done = _kiln_broker(conf, "sign-config", str(out / "kiln-agent.conf"), str(signed))
        assert done.returncode == 0, done.stderr
        assert (
            config_signing.verify_config(signed.read_bytes(), public, "cli")
            == (out / "kiln-agent.conf").read_bytes()
        )
    finally:
        for user in ("kiln-conductor", "kiln-api", "kiln-agent"):
            subprocess.run([procs.RABBITMQCTL, "-q", "delete_user", user], capture_output=True, timeout=120)
        procs.rabbitmqctl("delete_vhost", vhost)


def test_missing_rabbitmqctl_is_a_clear_error(tmp_path) -> None:
    conf = procs.write_conf(tmp_path / "kiln.conf", {"broker": {"rabbitmqctl": "/nonexistent/rabbitmqctl"}})
    done = _kiln_broker(conf, "list")
    assert done.returncode == 1
    assert "kiln-broker list: /nonexistent/rabbitmqctl -q list_users failed" in done.stderr
