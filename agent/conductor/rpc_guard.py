"""The conductors' agent-facing topic: only the agents' methods, whatever an agent sends.

Agents with broker accounts of their own ([broker]agent_accounts) may publish only to
``kiln.conductor.agent`` and ``kiln.conductor.heartbeat`` (their RabbitMQ topic permissions), never
to ``kiln.conductor`` where the API's methods are. What arrives on the agents' topic is served by
:class:`AgentGateway`: lookup, report_inventory, heartbeat and step_result, each checking the node's
token (bound to the node, agent.common.tokens). Any other method, a conductor or admin method sent
with an agent's credentials, is refused with AgentRPCRefused and logged with the method, the node it
names and the argument names; argument values (tokens, passwords, URLs) are never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import oslo_messaging as messaging
from oslo_log import log as logging
from oslo_utils import uuidutils

from agent.common import exception
from agent.common.utils import expect_kiln_errors

LOG = logging.getLogger(__name__)

#: What agents may call on the conductors.
AGENT_METHODS = ("lookup", "report_inventory", "heartbeat", "step_result")
#: Suffix of the conductors' topic where agents' calls go (kiln.conductor.agent).
AGENT_TOPIC_SUFFIX = ".agent"


def agent_topic(conductor_topic: str) -> str:
    """The topic the conductors serve agents on, next to ``conductor_topic``."""
    return conductor_topic + AGENT_TOPIC_SUFFIX


def _named_node(args: dict[str, Any]) -> str:
    """The node a call names, for the log: a UUID only (anything else is shown as its type)."""
    for key in ("node_uuid", "node_id", "node_ident", "node"):
        value = args.get(key)
        if value is not None:
            return value if isinstance(value, str) and uuidutils.is_uuid_like(value) else type(value).__name__
    return "none"


class AgentGateway:
    """The endpoint of the agents' topic: the manager's agent methods, and a logged refusal of the rest."""

    target = messaging.Target(version="1.0")

    def __init__(self, manager: Any, topic: str, allowed: tuple[str, ...] = AGENT_METHODS) -> None:
        self._manager = manager
        self._topic = topic
        self._allowed = allowed
        self.target = messaging.Target(version=getattr(getattr(manager, "target", None), "version", "1.0"))

    def lookup(self, ctxt: dict, *args: Any, **kwargs: Any) -> dict:
        """The manager's lookup."""
        return self._call("lookup", ctxt, args, kwargs)

    def report_inventory(self, ctxt: dict, *args: Any, **kwargs: Any) -> dict:
        """The manager's report_inventory (token checked there)."""
        return self._call("report_inventory", ctxt, args, kwargs)

    def heartbeat(self, ctxt: dict, *args: Any, **kwargs: Any) -> None:
        """The manager's heartbeat (token checked there)."""
        return self._call("heartbeat", ctxt, args, kwargs)

    def step_result(self, ctxt: dict, *args: Any, **kwargs: Any) -> None:
        """The manager's step_result (token checked there)."""
        return self._call("step_result", ctxt, args, kwargs)

    def _call(self, method: str, ctxt: dict, args: tuple, kwargs: dict) -> Any:
        if method not in self._allowed:
            return self._refuse(method)(ctxt, **kwargs)
        return getattr(self._manager, method)(ctxt, *args, **kwargs)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Every other public name answers with a refusal, so that it is logged here rather than
        # by the dispatcher as an unknown method (whose log is a traceback).
        if name.startswith("_"):
            raise AttributeError(name)
        return self._refuse(name)

    def _refuse(self, method: str) -> Callable[..., Any]:
        @messaging.expected_exceptions(exception.AgentRPCRefused)
        def refused(ctxt: dict, **kwargs: Any) -> None:
            LOG.warning(
                "Refused RPC %s on the agents' topic %s (node %s, arguments %s): agents may call only %s",
                method,
                self._topic,
                _named_node(kwargs),
                ", ".join(sorted(kwargs)) or "none",
                ", ".join(self._allowed),
            )
            raise exception.AgentRPCRefused(
                method=method, topic=self._topic, allowed=", ".join(self._allowed)
            )

        return refused


expect_kiln_errors(AgentGateway, AGENT_METHODS)
