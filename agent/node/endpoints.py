"""The agent's RPC server endpoints (topic ``kiln.agent``, server = node UUID)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

import oslo_messaging as messaging

from agent.common import exception

LOG = logging.getLogger(__name__)

Step = Callable[[dict], dict]


class AgentEndpoint:
    """ping, get_inventory and run_step; each call must carry this node's agent token."""

    target = messaging.Target(version="1.0")

    def __init__(
        self,
        node_uuid: str,
        token: Callable[[], str | None],
        inventory: Callable[[], dict],
        steps: dict[str, Step] | None = None,
        version: str = "unknown",
    ) -> None:
        self.node_uuid = node_uuid
        self._token = token
        self._inventory = inventory
        self.steps = dict(steps or {})
        self.version = version

    def _check_token(self, ctxt: dict, method: str, agent_token: str | None) -> None:
        expected = self._token()
        if not expected or not isinstance(agent_token, str) or not hmac.compare_digest(expected, agent_token):
            LOG.warning(
                "Rejected %s on node %s: agent token %s (request %s)",
                method,
                self.node_uuid,
                "missing" if not agent_token else "wrong",
                (ctxt or {}).get("request_id"),
            )
            raise exception.InvalidAgentToken(node=self.node_uuid)

    @messaging.expected_exceptions(exception.InvalidAgentToken)
    def ping(self, ctxt: dict, agent_token: str | None = None) -> dict:
        """Answer that this agent is alive."""
        self._check_token(ctxt, "ping", agent_token)
        return {"node_uuid": self.node_uuid, "version": self.version}

    @messaging.expected_exceptions(exception.InvalidAgentToken)
    def get_inventory(self, ctxt: dict, agent_token: str | None = None) -> dict:
        """Collect and return the inventory now."""
        self._check_token(ctxt, "get_inventory", agent_token)
        return self._inventory()

    @messaging.expected_exceptions(exception.InvalidAgentToken, exception.InvalidParameterValue)
    def run_step(
        self, ctxt: dict, agent_token: str | None = None, step: str = "", args: dict | None = None
    ) -> dict:
        """Run one named step with ``args`` and return its result."""
        self._check_token(ctxt, "run_step", agent_token)
        fn = self.steps.get(step)
        if fn is None:
            known = ", ".join(sorted(self.steps)) or "none"
            raise exception.InvalidParameterValue(
                err=f"Agent on node {self.node_uuid} has no step {step!r}; known steps: {known}."
            )
        if args is not None and not isinstance(args, dict):
            raise exception.InvalidParameterValue(
                err=f"Step {step!r} on node {self.node_uuid}: args must be an object, "
                f"got {type(args).__name__}."
            )
        LOG.info("Running step %s on node %s", step, self.node_uuid)
        return fn(args or {})
