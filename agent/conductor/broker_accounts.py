"""RabbitMQ accounts for Kiln's services and agents, made with rabbitmqctl (kiln-broker, the conductors).

Who may do what on the vhost (configure / write / read are RabbitMQ's resource permissions, the
topic permissions restrict the routing keys on the ``kiln`` exchange):

- ``kiln-conductor``: everything.
- ``kiln-api``: publishes to the conductors' topics, reads only its own reply queues.
- agents (``kiln-agent``, or ``kiln-agent-<node uuid>`` with [broker]agent_accounts = per_node):
  publish only to ``kiln.conductor.agent`` and ``kiln.conductor.heartbeat`` (where the conductors
  serve nothing but the agents' methods, agent.conductor.rpc_guard), and bind only the agents'
  command routing keys: a per-node account only its own node's ``kiln.agent.<uuid>``.

Passwords reach rabbitmqctl on its standard input, never on its command line, and are never logged.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import urllib.parse
from dataclasses import dataclass

import oslo_messaging as messaging
from oslo_log import log as logging

from agent.common import exception, rpc
from agent.common.config import CONF
from agent.conductor import rpc_guard
from agent.conductor.drivers import boot_files

LOG = logging.getLogger(__name__)

CONDUCTOR_USER = "kiln-conductor"
API_USER = "kiln-api"
AGENT_USER = "kiln-agent"
AGENT_CONFIG = "agent.conf"
_REPLY = r"reply_[0-9a-f]+"


class BrokerError(exception.KilnException):
    message = "%(reason)s"


@dataclass(frozen=True)
class Permissions:
    """RabbitMQ permissions of one account on one vhost (regular expressions)."""

    configure: str
    write: str
    read: str
    topic_write: str | None = None  # on the control exchange; None: no topic restriction
    topic_read: str | None = None


def agent_user(node_uuid: str | None) -> str:
    """The account name of node ``node_uuid``'s agent; the shared agents' account for None."""
    return f"{AGENT_USER}-{node_uuid.lower()}" if node_uuid else AGENT_USER


def agent_permissions(node_uuid: str | None) -> Permissions:
    """What an agent may do: per node, only its own node's command queue; shared, any agent's."""
    exchange = re.escape(rpc.CONTROL_EXCHANGE)
    commands = re.escape(rpc.AGENT_TOPIC)
    own = rf"{commands}\.{re.escape(node_uuid.lower())}" if node_uuid else rf"{commands}\.[0-9a-f-]+"
    fanout = rf"{commands}_fanout"
    to_conductors = "|".join(
        re.escape(t)
        for t in (rpc_guard.agent_topic(rpc.CONDUCTOR_TOPIC), rpc.heartbeat_topic(rpc.CONDUCTOR_TOPIC))
    )
    queues = rf"{commands}|{own}|{fanout}_[0-9a-f]+|{_REPLY}"
    return Permissions(
        configure=rf"^({exchange}|{queues}|{fanout})$",
        write=rf"^({exchange}|{queues})$",
        read=rf"^({exchange}|{queues}|{fanout})$",
        topic_write=rf"^({to_conductors})$",
        topic_read=rf"^({commands}|{own})$",
    )


def api_permissions() -> Permissions:
    """What kiln-api may do: call the conductors, read its replies."""
    exchange = re.escape(rpc.CONTROL_EXCHANGE)
    return Permissions(
        configure=rf"^({exchange}|{_REPLY})$",
        write=rf"^({exchange}|{_REPLY})$",
        read=rf"^({_REPLY})$",
        topic_write=rf"^{re.escape(rpc.CONDUCTOR_TOPIC)}(\..+)?$",
        topic_read="^$",
    )


def conductor_permissions() -> Permissions:
    """What kiln-conductor may do: everything on the vhost."""
    return Permissions(".*", ".*", ".*")


def default_vhost() -> str:
    """[broker]vhost, else the virtual host of [DEFAULT]transport_url, else '/'."""
    if CONF.broker.vhost:
        return CONF.broker.vhost
    try:
        url = messaging.TransportURL.parse(CONF, CONF.transport_url)
    except (messaging.InvalidTransportURL, AttributeError):
        return "/"
    return url.virtual_host or "/"


class Rabbitmqctl:
    """Runs [broker]rabbitmqctl; every failure raises BrokerError naming the command (no password)."""

    def __init__(self, command: list[str] | None = None, vhost: str | None = None) -> None:
        self.command = list(command or CONF.broker.rabbitmqctl)
        self.vhost = vhost or default_vhost()

    def _run(self, *args: str, stdin: str | None = None, ok_if: str | None = None) -> str:
        argv = [*self.command, "-q", *args]
        try:
            done = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=CONF.broker.rabbitmqctl_timeout
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerError(reason=f"{' '.join(argv)} failed: {exc}") from None
        said = (done.stderr or done.stdout).strip()
        if done.returncode != 0 and not (ok_if and ok_if in said):
            raise BrokerError(reason=f"{' '.join(argv)} failed (exit {done.returncode}): {said}")
        return done.stdout

    def users(self) -> set[str]:
        """The broker's user names."""
        return {line.split("\t", 1)[0] for line in self._run("list_users").splitlines() if line.strip()}

    def put_user(self, user: str, password: str, perms: Permissions) -> None:
        """Create ``user`` (replacing one of that name) with ``password`` and ``perms`` on the vhost."""
        self.delete_user(user)
        self._run("add_user", user, stdin=password + "\n")
        self._run("set_permissions", "-p", self.vhost, user, perms.configure, perms.write, perms.read)
        if perms.topic_write is not None:
            self._run(
                "set_topic_permissions",
                "-p",
                self.vhost,
                user,
                rpc.CONTROL_EXCHANGE,
                perms.topic_write,
                perms.topic_read or "^$",
            )

    def delete_user(self, user: str) -> None:
        """Delete ``user`` (its connections are closed); no-op when there is none."""
        self._run("delete_user", user, ok_if="not exist")

    def ensure_vhost(self) -> None:
        """Create the vhost when it is missing."""
        self._run("add_vhost", self.vhost, ok_if="already exists")


def with_credentials(url: str, user: str, password: str) -> str:
    """``url`` (a transport URL without credentials) with ``user``:``password`` on each host."""
    parts = urllib.parse.urlsplit(url)
    cred = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@"
    hosts = ",".join(cred + h.rsplit("@", 1)[-1] for h in parts.netloc.split(",") if h)
    return urllib.parse.urlunsplit(parts._replace(netloc=hosts))


def agent_config(transport_url: str) -> str:
    """The ini served to an agent: its transport URL, the agents' topic, TLS if configured."""
    lines = [
        "[DEFAULT]",
        f"transport_url = {transport_url}",
        "[agent]",
        f"conductor_topic = {rpc_guard.agent_topic(rpc.CONDUCTOR_TOPIC)}",
    ]
    if CONF.broker.agent_ssl_ca_file:
        lines += ["[oslo_messaging_rabbit]", "ssl = true", f"ssl_ca_file = {CONF.broker.agent_ssl_ca_file}"]
    return "\n".join(lines) + "\n"


def per_node() -> bool:
    """Whether each node's agent gets its own broker account."""
    return CONF.broker.agent_accounts == "per_node"


def config_url(node_uuid: str) -> str:
    """Where node ``node_uuid``'s agent fetches its agent.conf (kiln.config_url)."""
    return f"{CONF.pxe.http_url.rstrip('/')}/{node_uuid}/{AGENT_CONFIG}"


def config_key() -> str | None:
    """The public key (kiln.config_key) the served agent.conf is signed with; None when not signed."""
    if not CONF.broker.config_signing_key_file:
        return None
    from agent.common import config_signing

    try:
        key = config_signing.load_private_key(CONF.broker.config_signing_key_file)
    except config_signing.ConfigSignatureError as exc:
        raise exception.InvalidParameterValue(err=f"[broker]config_signing_key_file: {exc}") from None
    return config_signing.public_b64(key.public_key())


def check_per_node(node_uuid: str) -> None:
    """Raise MissingParameterValue naming what per_node accounts lack (HTTP root and URL, broker URL)."""
    missing = [
        name
        for name, value in (
            ("[pxe]http_root", CONF.pxe.http_root),
            ("[pxe]http_url", CONF.pxe.http_url),
            ("[broker]agent_broker_url", CONF.broker.agent_broker_url),
        )
        if not value
    ]
    if missing:
        raise exception.MissingParameterValue(
            err=f"Node {node_uuid}: [broker]agent_accounts = per_node needs {', '.join(missing)}: the "
            "conductor serves each agent its own agent.conf over HTTP."
        )


def grant_agent_access(node_uuid: str, ctl: Rabbitmqctl | None = None) -> str:
    """Make node ``node_uuid``'s broker account and write its (signed) agent.conf; return the file's path."""
    check_per_node(node_uuid)
    ctl = ctl or Rabbitmqctl()
    user, password = agent_user(node_uuid), secrets.token_urlsafe(24)
    ctl.put_user(user, password, agent_permissions(node_uuid))
    body = agent_config(with_credentials(CONF.broker.agent_broker_url, user, password)).encode("utf-8")
    if CONF.broker.config_signing_key_file:
        from agent.common import config_signing

        key = config_signing.load_private_key(CONF.broker.config_signing_key_file)
        body = config_signing.sign_config(body, key)
    # Served to the node over HTTP like its boot script; it lives only while the ramdisk runs.
    path = boot_files.write_file(CONF.pxe.http_root, f"{node_uuid}/{AGENT_CONFIG}", body.decode("utf-8"))
    LOG.info(
        "Node %s: broker account %s made on vhost %s, its agent.conf written", node_uuid, user, ctl.vhost
    )
    return path


def revoke_agent_access(node_uuid: str, ctl: Rabbitmqctl | None = None) -> None:
    """Delete node ``node_uuid``'s broker account (closing its connections) and its agent.conf."""
    ctl = ctl or Rabbitmqctl()
    ctl.delete_user(agent_user(node_uuid))
    if CONF.pxe.http_root:
        boot_files.remove(CONF.pxe.http_root, f"{node_uuid}/{AGENT_CONFIG}")
    LOG.info("Node %s: broker account %s deleted", node_uuid, agent_user(node_uuid))


def served_config_path(node_uuid: str) -> str:
    """Where node ``node_uuid``'s agent.conf is written under [pxe]http_root."""
    return os.path.join(CONF.pxe.http_root, node_uuid, AGENT_CONFIG)
