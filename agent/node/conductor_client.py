"""Client of the conductors' agent-facing RPC methods (topic ``kiln.conductor``), used by kiln-agent.

The server side is agent.conductor.agent_endpoints.AgentEndpoints; the API's methods have their
own client, agent.conductor.rpcapi.ConductorAPI (the node agent never imports agent.conductor).

API version history (the conductor's target is at the newest version of agent.conductor.rpcapi,
whose history this shares):
    1.0 - lookup, report_inventory, heartbeat, step_result. (Releases 2026.12.04 and 2026.12.05.)

Heartbeats go to the topic lookup hands back as ``config["heartbeat_topic"]``
(``kiln.conductor.heartbeat``), where the conductors serve them apart from everything else; a
conductor that names none takes them on ``kiln.conductor`` like any other message.

Each method asks for the lowest version that has it; a version cap (``[upgrade_levels]conductor``,
formerly ``[agent]conductor_version_cap``) below that raises exception.RPCVersionCapped before
anything is sent.
"""

from __future__ import annotations

from agent.common import rpc


class ConductorClient(rpc.RPCClientBase):
    """Calls and casts from an agent to ``kiln.conductor`` (any live conductor answers)."""

    RPC_API_VERSION = "1.0"
    DEFAULT_TOPIC = rpc.CONDUCTOR_TOPIC
    UPGRADE_LEVEL = "conductor"

    # -- agents ---------------------------------------------------------------------------
    def lookup(
        self,
        ctxt: dict,
        macs: list[str],
        system_uuid: str | None = None,
        bootif: str | None = None,
        *,
        timeout: float | None = None,
    ) -> dict:
        """Find the node with these MACs / system UUID; returns node, agent_token and config."""
        return self._prepare("1.0", timeout=timeout, method="lookup").call(
            ctxt, "lookup", macs=list(macs), system_uuid=system_uuid, bootif=bootif
        )

    def report_inventory(
        self,
        ctxt: dict,
        node_uuid: str,
        agent_token: str,
        inventory: dict,
        changes: dict | None = None,
        *,
        timeout: float | None = None,
    ) -> dict:
        """Store a node's inventory (and what changed); returns {"stored": True, "traits": [...]}."""
        return self._prepare("1.0", timeout=timeout, method="report_inventory").call(
            ctxt,
            "report_inventory",
            node_uuid=node_uuid,
            agent_token=agent_token,
            inventory=inventory,
            changes=changes,
        )

    def heartbeat(
        self, ctxt: dict, node_uuid: str, agent_token: str, status: dict, *, topic: str | None = None
    ) -> None:
        """Tell the conductors the agent is alive (cast), on ``topic`` (the one lookup named) if given."""
        self._prepare("1.0", topic=topic, method="heartbeat").cast(
            ctxt, "heartbeat", node_uuid=node_uuid, agent_token=agent_token, status=status
        )

    def step_result(self, ctxt: dict, node_uuid: str, agent_token: str, step: str, result: dict) -> None:
        """Hand back the result of a step the agent ran (cast)."""
        self._prepare("1.0", method="step_result").cast(
            ctxt, "step_result", node_uuid=node_uuid, agent_token=agent_token, step=step, result=result
        )
