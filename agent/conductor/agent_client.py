"""Client the conductor uses to command one agent (topic ``kiln.agent``, server = node UUID).

API version history (the server side is agent.node.endpoints.AgentEndpoint):
    1.0 - ping, get_inventory, run_step, get_step_status. (Releases 2026.12.04 and 2026.12.05.)

``[upgrade_levels]agent`` caps what this client sends. Steps an older agent lacks (such as
burnin_gpus) are not an RPC change: run_step names them and the agent refuses an unknown step.
"""

from __future__ import annotations

import oslo_messaging as messaging

from agent.common import rpc


class AgentClient(rpc.RPCClientBase):
    """Calls to the agent of one node; every call carries that node's agent token."""

    RPC_API_VERSION = "1.0"
    DEFAULT_TOPIC = rpc.AGENT_TOPIC
    UPGRADE_LEVEL = "agent"

    def _to_agent(
        self, node_uuid: str, version: str, timeout: float | None, method: str = "this call"
    ) -> messaging.RPCClient:
        if not node_uuid:
            raise ValueError("an agent call needs the node UUID of the agent to call")
        return self._prepare(version, server=node_uuid, timeout=timeout, method=method)

    def ping(self, ctxt: dict, node_uuid: str, agent_token: str, *, timeout: float | None = None) -> dict:
        """Check the agent answers; returns {"node_uuid", "version"}."""
        return self._to_agent(node_uuid, "1.0", timeout, "ping").call(ctxt, "ping", agent_token=agent_token)

    def get_inventory(
        self, ctxt: dict, node_uuid: str, agent_token: str, *, timeout: float | None = None
    ) -> dict:
        """Have the agent collect and return its inventory now."""
        return self._to_agent(node_uuid, "1.0", timeout, "get_inventory").call(
            ctxt, "get_inventory", agent_token=agent_token
        )

    def run_step(
        self,
        ctxt: dict,
        node_uuid: str,
        agent_token: str,
        step: str,
        args: dict | None = None,
        *,
        timeout: float | None = None,
    ) -> dict:
        """Start one step (write_image, erase_devices, ...); returns {"command_id", "step", "status"}.

        The agent reports the outcome with the conductor's step_result; get_step_status polls it.
        """
        return self._to_agent(node_uuid, "1.0", timeout, "run_step").call(
            ctxt, "run_step", agent_token=agent_token, step=step, args=args or {}
        )

    def get_step_status(
        self, ctxt: dict, node_uuid: str, agent_token: str, command_id: str, *, timeout: float | None = None
    ) -> dict:
        """The result of a started step ({"status": "succeeded"|"failed", ...}) or {"status": "running"}."""
        return self._to_agent(node_uuid, "1.0", timeout, "get_step_status").call(
            ctxt, "get_step_status", agent_token=agent_token, command_id=command_id
        )
