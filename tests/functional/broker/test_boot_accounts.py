"""The boot interface makes a node's broker account when it boots the ramdisk and deletes it at clean-up.

Real rabbitmqctl on the machine's RabbitMQ (a vhost of this test), the real ipxe boot interface on
a SQLite database; the agent.conf it serves is signed with the key it puts on the command line.
"""

# ruff: noqa: F811 - db, make_node, acquire and boot_dirs are the driver tests' fixtures

from __future__ import annotations

import re
import uuid

import pytest

from agent.common import config_signing
from agent.common.config import CONF
from agent.conductor import broker_accounts
from tests.functional import procs
from tests.unit.conductor.drivers.conftest import acquire, boot_dirs, db, make_node  # noqa: F401

pytestmark = [
    pytest.mark.skipif(not procs.reachable(5672), reason="RabbitMQ is not listening on 127.0.0.1:5672"),
    pytest.mark.skipif(procs.RABBITMQCTL is None, reason="rabbitmqctl is not installed"),
]


@pytest.fixture
def per_node(tmp_path):
    """[broker]agent_accounts = per_node on a vhost of this test, with a signing key."""
    vhost = f"kiln-boot-{uuid.uuid4().hex[:10]}"
    procs.add_vhost(vhost)
    key_path = tmp_path / "config-signing.pem"
    config_signing.write_private_key(str(key_path), config_signing.generate_key())
    overrides = {
        "agent_accounts": "per_node",
        "vhost": vhost,
        "agent_broker_url": f"rabbit://10.9.0.1:5671/{vhost}",
        "agent_ssl_ca_file": "/etc/kiln/broker-ca.pem",
        "config_signing_key_file": str(key_path),
    }
    for name, value in overrides.items():
        CONF.set_override(name, value, group="broker")
    try:
        yield broker_accounts.Rabbitmqctl(vhost=vhost)
    finally:
        for name in overrides:
            CONF.clear_override(name, group="broker")
        procs.delete_vhost(vhost)


def test_ramdisk_boot_makes_the_account_and_clean_up_deletes_it(
    per_node, make_node, acquire, boot_dirs
) -> None:
    node = make_node(ports=[("52:54:00:aa:bb:01", True)])
    user = broker_accounts.agent_user(node)
    try:
        with acquire(node) as task:
            task.driver.boot.prepare_ramdisk(task, {})
        assert user in per_node.users()
        script = (boot_dirs["http_root"] / node / "boot.ipxe").read_text()
        assert f"kiln.config_url=http://10.9.0.1:8088/{node}/agent.conf" in script
        key = re.search(r"kiln\.config_key=(\S+)", script).group(1)
        served = (boot_dirs["http_root"] / node / "agent.conf").read_bytes()
        body = config_signing.verify_config(served, config_signing.parse_public_key(key, "script"), "served")
        text = body.decode()
        assert re.search(rf"transport_url = rabbit://{re.escape(user)}:[^@]+@10\.9\.0\.1:5671/", text)
        assert "conductor_topic = kiln.conductor.agent" in text
        assert "ssl = true" in text and "ssl_ca_file = /etc/kiln/broker-ca.pem" in text
        password = re.search(r"rabbit://[^:]+:([^@]+)@", text).group(1)
        assert password not in script  # nothing secret on the command line

        with acquire(node) as task:
            task.driver.boot.clean_up_ramdisk(task)
        assert user not in per_node.users()
        assert not (boot_dirs["http_root"] / node / "agent.conf").exists()
    finally:
        per_node.delete_user(user)


def test_per_node_needs_an_http_url_and_a_broker_url(per_node, make_node, acquire, boot_dirs) -> None:
    from agent.common import exception

    CONF.clear_override("agent_broker_url", group="broker")
    node = make_node(ports=[("52:54:00:aa:bb:02", True)])
    with acquire(node) as task:
        with pytest.raises(
            exception.MissingParameterValue, match=r"per_node needs \[broker\]agent_broker_url"
        ):
            task.driver.boot.validate(task)
    assert broker_accounts.agent_user(node) not in per_node.users()
