"""The agent's RPC server endpoints (topic ``kiln.agent``, server = node UUID)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING

import oslo_messaging as messaging
from oslo_log import log as logging

from agent.common import exception

if TYPE_CHECKING:
    from agent.node.steps.runner import StepRunner

LOG = logging.getLogger(__name__)

Step = Callable[[dict], dict]


class AgentEndpoint:
    """ping, get_inventory, run_step and get_step_status; each call must carry this node's agent token.

    With a ``runner`` (agent.node.steps.runner.StepRunner), run_step starts the step in the
    background and answers at once; without one, ``steps`` run synchronously (tests, simple agents).
    """

    target = messaging.Target(version="1.0")

    def __init__(
        self,
        node_uuid: str,
        token: Callable[[], str | None],
        inventory: Callable[[], dict],
        steps: dict[str, Step] | None = None,
        version: str = "unknown",
        runner: StepRunner | None = None,
    ) -> None:
        self.node_uuid = node_uuid
        self._token = token
        self._inventory = inventory
        self.steps = dict(steps or {})
        self.version = version
        self.runner = runner

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

    @messaging.expected_exceptions(
        exception.InvalidAgentToken, exception.InvalidParameterValue, exception.InvalidState
    )
    def run_step(
        self, ctxt: dict, agent_token: str | None = None, step: str = "", args: dict | None = None
    ) -> dict:
        """Start one named step with ``args`` (runner: returns {"command_id", "step", "status"})."""
        self._check_token(ctxt, "run_step", agent_token)
        if self.runner is not None:
            return self._start_step(step, args)
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

    def _start_step(self, step: str, args: dict | None) -> dict:
        from agent.node.steps.errors import StepError
        from agent.node.steps.runner import AgentBusy, UnknownStep

        try:
            started = self.runner.start(step, args)
        except (UnknownStep, StepError) as exc:
            raise exception.InvalidParameterValue(err=f"Agent on node {self.node_uuid}: {exc}") from exc
        except AgentBusy as exc:
            raise exception.InvalidState(
                reason=f"agent on node {self.node_uuid} is busy: {exc}; wait for its step_result"
            ) from exc
        LOG.info("Started step %s on node %s (command %s)", step, self.node_uuid, started["command_id"])
        return started

    @messaging.expected_exceptions(exception.InvalidAgentToken, exception.InvalidParameterValue)
    def get_step_status(self, ctxt: dict, agent_token: str | None = None, command_id: str = "") -> dict:
        """The result of a step started by run_step, or {"status": "running"} while it runs."""
        self._check_token(ctxt, "get_step_status", agent_token)
        if self.runner is None:
            raise exception.InvalidParameterValue(
                err=f"Agent on node {self.node_uuid} runs steps synchronously; there is no command status"
            )
        from agent.node.steps.runner import UnknownStep

        try:
            return self.runner.status(command_id)
        except UnknownStep as exc:
            raise exception.InvalidParameterValue(err=f"Agent on node {self.node_uuid}: {exc}") from exc
