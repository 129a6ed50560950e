"""oslo.messaging plumbing shared by the agent, the conductor and the API.

The global ``cfg.CONF`` is used throughout (a private ConfigOpts misses oslo.messaging's
``oslo_messaging_tracing`` group). Contexts are plain dicts, sent as they are.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from concurrent import futures

import oslo_messaging as messaging
import oslo_messaging.opts
from oslo_config import cfg
from oslo_log import log as logging

from agent.common import exception, upgrade_levels

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

CONDUCTOR_TOPIC = "kiln.conductor"
#: Agents' heartbeats go to the conductors' topic plus this (handed to each agent at lookup).
HEARTBEAT_TOPIC_SUFFIX = ".heartbeat"
AGENT_TOPIC = "kiln.agent"
RPC_API_VERSION = "1.0"
CONTROL_EXCHANGE = "kiln"

# Exceptions from these modules are rebuilt as themselves on the calling side.
ALLOWED_EXMODS = ["agent.common.exception"]

# RabbitMQ waits at most heartbeat_timeout_threshold / heartbeat_rate / 2 seconds in one poll,
# and a stopping RPC server waits for that poll: 6 / 3 / 2 = 1 s instead of oslo's 10 s.
_RABBIT_DEFAULTS = {"heartbeat_timeout_threshold": 6, "kombu_reconnect_delay": 0.5}

_lock = threading.Lock()
_TRANSPORT: messaging.Transport | None = None
#: Called on each server get_server makes (kiln-conductor adds its metrics' timing here).
_SERVER_HOOKS: list[Callable] = []


def set_defaults(conf: cfg.ConfigOpts = CONF) -> None:
    """Set Kiln's defaults on oslo.messaging options (exchange, shorter RabbitMQ waits)."""
    messaging.set_transport_defaults(control_exchange=CONTROL_EXCHANGE)
    for group, opts in oslo_messaging.opts.list_opts():
        if group == "oslo_messaging_rabbit":
            conf.register_opts(opts, group=group)
    for name, value in _RABBIT_DEFAULTS.items():
        conf.set_default(name, value, group="oslo_messaging_rabbit")


def heartbeat_topic(conductor_topic: str = CONDUCTOR_TOPIC) -> str:
    """The topic agents cast heartbeats to, next to the conductors' ``conductor_topic``."""
    return conductor_topic + HEARTBEAT_TOPIC_SUFFIX


def get_transport(conf: cfg.ConfigOpts = CONF, url: str | None = None) -> messaging.Transport:
    """Return a new RPC transport for ``url`` (default ``[DEFAULT]transport_url``)."""
    set_defaults(conf)
    try:
        return messaging.get_rpc_transport(conf, url=url, allowed_remote_exmods=ALLOWED_EXMODS)
    except messaging.InvalidTransportURL as exc:
        raise ValueError(f"transport_url {url or '[DEFAULT]transport_url'} is invalid: {exc}") from exc


def init(conf: cfg.ConfigOpts = CONF, url: str | None = None) -> messaging.Transport:
    """Create the process-wide transport once and return it."""
    global _TRANSPORT
    with _lock:
        if _TRANSPORT is None:
            _TRANSPORT = get_transport(conf, url)
        return _TRANSPORT


def cleanup() -> None:
    """Close the process-wide transport, if any."""
    global _TRANSPORT
    with _lock:
        transport, _TRANSPORT = _TRANSPORT, None
    if transport is not None:
        transport.cleanup()


def get_client(
    transport: messaging.Transport,
    topic: str,
    *,
    server: str | None = None,
    version: str = RPC_API_VERSION,
    version_cap: str | None = None,
    timeout: float | None = None,
    retry: int | None = None,
) -> messaging.RPCClient:
    """Return an RPC client of ``topic`` (optionally one ``server``) honouring ``version_cap``."""
    target = messaging.Target(topic=topic, server=server, version=version)
    return messaging.get_rpc_client(transport, target, version_cap=version_cap, timeout=timeout, retry=retry)


def get_server(
    transport: messaging.Transport, topic: str, server: str, endpoints: list
) -> messaging.rpc.server.RPCServer:
    """Return a threaded RPC server of ``topic`` named ``server`` for ``endpoints``.

    ``start(override_pool_size=N)`` on it runs N worker threads instead of
    [DEFAULT]executor_thread_pool_size.
    """
    target = messaging.Target(topic=topic, server=server)
    rpc_server = messaging.get_rpc_server(
        transport, target, endpoints, access_policy=messaging.DefaultRPCAccessPolicy
    )
    # oslo.messaging's threading executor is futurist's pool, whose idle workers look at their
    # queue once a second: every stopping server waited up to 1 s for them to notice. The
    # standard library's pool (same submit/shutdown contract) wakes idle workers on shutdown.
    # oslo.messaging has no public hook for the pool class, hence the attribute.
    if hasattr(rpc_server, "_executor_cls"):
        rpc_server._executor_cls = functools.partial(
            futures.ThreadPoolExecutor, thread_name_prefix=f"rpc-{topic}"
        )
    for hook in _SERVER_HOOKS:
        hook(rpc_server, endpoints)
    return rpc_server


def add_server_hook(hook: Callable[[messaging.rpc.server.RPCServer, list], None]) -> None:
    """Have ``hook(server, endpoints)`` called on every RPC server get_server makes from now on."""
    if hook not in _SERVER_HOOKS:
        _SERVER_HOOKS.append(hook)


def remove_server_hook(hook: Callable) -> None:
    """Undo ``add_server_hook``."""
    if hook in _SERVER_HOOKS:
        _SERVER_HOOKS.remove(hook)


def stop_server(server: messaging.rpc.server.RPCServer, timeout: float) -> bool:
    """Stop ``server`` and wait for it at most ``timeout`` s; say whether it finished in time."""
    return stop_servers([server], timeout)


def stop_servers(servers: list[messaging.rpc.server.RPCServer], timeout: float) -> bool:
    """Stop ``servers`` side by side, waiting at most ``timeout`` s in all; say whether all finished."""

    def _stop(server: messaging.rpc.server.RPCServer) -> None:
        try:
            server.stop()
            server.wait()
        except Exception:  # noqa: BLE001 - shutdown goes on whatever the driver says
            LOG.exception("Stopping RPC server %s failed", server)

    stoppers = [
        threading.Thread(target=_stop, args=(server,), name="rpc-server-stop", daemon=True)
        for server in servers
    ]
    for stopper in stoppers:
        stopper.start()
    deadline = time.monotonic() + timeout
    for stopper in stoppers:
        stopper.join(max(0.0, deadline - time.monotonic()))
    late = sum(stopper.is_alive() for stopper in stoppers)
    if late:
        LOG.warning("%d RPC server(s) did not stop within %.1f s; going on with shutdown", late, timeout)
        return False
    return True


class RPCClientBase:
    """The client side of one topic: a versioned client honouring a version cap, prepared per call.

    Subclasses set ``DEFAULT_TOPIC``, their own ``RPC_API_VERSION`` and ``UPGRADE_LEVEL`` (the
    ``[upgrade_levels]`` option whose cap applies when none is given), and add one method per
    remote method, each naming the lowest API version that has it.
    """

    RPC_API_VERSION: str = RPC_API_VERSION
    DEFAULT_TOPIC: str
    UPGRADE_LEVEL: str | None = None

    def __init__(
        self,
        transport: messaging.Transport | None = None,
        topic: str | None = None,
        version_cap: str | None = None,
        timeout: float | None = None,
        retry: int | None = None,
    ) -> None:
        self.topic = self.DEFAULT_TOPIC if topic is None else topic
        if version_cap is None and self.UPGRADE_LEVEL:
            version_cap = upgrade_levels.version_cap(self.UPGRADE_LEVEL, CONF)
        self.version_cap = version_cap
        self.client = get_client(
            transport or init(),
            self.topic,
            version=self.RPC_API_VERSION,
            version_cap=version_cap,
            timeout=timeout,
            retry=retry,
        )

    def _prepare(
        self,
        version: str,
        server: str | None = None,
        timeout: float | None = None,
        topic: str | None = None,
        method: str = "this call",
    ) -> messaging.RPCClient:
        """The client for one call: ``version``, and ``server``, ``timeout`` and ``topic`` where given.

        A ``version`` above the version cap raises exception.RPCVersionCapped, naming ``method``.
        """
        self.require(version, method)
        kwargs: dict = {"version": version}
        if server is not None:
            kwargs["server"] = server
        if timeout is not None:
            kwargs["timeout"] = timeout
        if topic is not None:
            kwargs["topic"] = topic
        return self.client.prepare(**kwargs)

    def can_send_version(self, version: str) -> bool:
        """Say whether ``version`` is within the version cap."""
        return self.client.can_send_version(version)

    def require(self, version: str, method: str) -> None:
        """Refuse ``method`` (RPCVersionCapped, naming the option to lift) above the version cap."""
        if not self.can_send_version(version):
            raise exception.RPCVersionCapped(
                method=method,
                topic=self.topic,
                needed=version,
                option=self.UPGRADE_LEVEL or "(caller's version_cap)",
                cap=self.version_cap,
            )
