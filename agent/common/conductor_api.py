"""Client of the conductors' RPC API (topic ``kiln.conductor``), used by agents and the API.

API version history:
    1.0 - lookup, report_inventory, heartbeat, step_result, change_provision_state,
          change_power_state, create/update/destroy_node, create/update/destroy_port.

Each method asks for the lowest version that has it; a ``version_cap`` below that raises
``oslo_messaging.RPCVersionCapError`` before anything is sent.
"""

from __future__ import annotations

import oslo_messaging as messaging

from agent.common import rpc


class ConductorAPI:
    """Calls and casts to ``kiln.conductor``; ``server=`` targets one conductor by host name."""

    RPC_API_VERSION = "1.0"

    def __init__(
        self,
        transport: messaging.Transport | None = None,
        topic: str = rpc.CONDUCTOR_TOPIC,
        version_cap: str | None = None,
        timeout: float | None = None,
        retry: int | None = None,
    ) -> None:
        self.topic = topic
        self.client = rpc.get_client(
            transport or rpc.init(),
            topic,
            version=self.RPC_API_VERSION,
            version_cap=version_cap,
            timeout=timeout,
            retry=retry,
        )

    def _prepare(
        self, version: str, server: str | None = None, timeout: float | None = None
    ) -> messaging.RPCClient:
        kwargs: dict = {"version": version}
        if server is not None:
            kwargs["server"] = server
        if timeout is not None:
            kwargs["timeout"] = timeout
        return self.client.prepare(**kwargs)

    def can_send_version(self, version: str) -> bool:
        """Say whether ``version`` is within the version cap."""
        return self.client.can_send_version(version)

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
        return self._prepare("1.0", timeout=timeout).call(
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
        return self._prepare("1.0", timeout=timeout).call(
            ctxt,
            "report_inventory",
            node_uuid=node_uuid,
            agent_token=agent_token,
            inventory=inventory,
            changes=changes,
        )

    def heartbeat(self, ctxt: dict, node_uuid: str, agent_token: str, status: dict) -> None:
        """Tell the conductors the agent is alive (cast)."""
        self._prepare("1.0").cast(
            ctxt, "heartbeat", node_uuid=node_uuid, agent_token=agent_token, status=status
        )

    def step_result(self, ctxt: dict, node_uuid: str, agent_token: str, step: str, result: dict) -> None:
        """Hand back the result of a step the agent ran (cast)."""
        self._prepare("1.0").cast(
            ctxt, "step_result", node_uuid=node_uuid, agent_token=agent_token, step=step, result=result
        )

    # -- API ------------------------------------------------------------------------------
    def change_provision_state(
        self, ctxt: dict, node_ident: str, verb: str, args: dict | None = None, *, server: str | None = None
    ) -> dict:
        """Apply a provision verb (manage, provide, deploy, ...) to a node."""
        return self._prepare("1.0", server).call(
            ctxt, "change_provision_state", node_ident=node_ident, verb=verb, args=args
        )

    def change_power_state(
        self,
        ctxt: dict,
        node_ident: str,
        target: str,
        power_timeout: int | None = None,
        *,
        server: str | None = None,
    ) -> dict:
        """Power a node on, off or reboot it."""
        return self._prepare("1.0", server).call(
            ctxt, "change_power_state", node_ident=node_ident, target=target, power_timeout=power_timeout
        )

    def create_node(self, ctxt: dict, values: dict, *, server: str | None = None) -> dict:
        """Create a node from ``values``; returns it."""
        return self._prepare("1.0", server).call(ctxt, "create_node", values=values)

    def update_node(self, ctxt: dict, node_ident: str, values: dict, *, server: str | None = None) -> dict:
        """Change a node's fields; returns it."""
        return self._prepare("1.0", server).call(ctxt, "update_node", node_ident=node_ident, values=values)

    def destroy_node(self, ctxt: dict, node_ident: str, *, server: str | None = None) -> None:
        """Delete a node."""
        self._prepare("1.0", server).call(ctxt, "destroy_node", node_ident=node_ident)

    def create_port(self, ctxt: dict, values: dict, *, server: str | None = None) -> dict:
        """Create a port from ``values``; returns it."""
        return self._prepare("1.0", server).call(ctxt, "create_port", values=values)

    def update_port(self, ctxt: dict, port_ident: str, values: dict, *, server: str | None = None) -> dict:
        """Change a port's fields; returns it."""
        return self._prepare("1.0", server).call(ctxt, "update_port", port_ident=port_ident, values=values)

    def destroy_port(self, ctxt: dict, port_ident: str, *, server: str | None = None) -> None:
        """Delete a port."""
        self._prepare("1.0", server).call(ctxt, "destroy_port", port_ident=port_ident)
