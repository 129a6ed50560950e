"""The API's RPC client of the conductors: each node's call goes to the conductor the hash ring names.

Version history of the API-facing methods (topic ``kiln.conductor``; the agent-facing methods of
the same topic are in agent.node.conductor_client, all at 1.0):
    1.0 - create/update/destroy_node, change_provision_state, change_power_state, boot device,
          validate_driver_interfaces, traits, create/update/destroy_port, create/update/destroy_allocation.
          (Release 2026.12.04.)
    1.1 - create/update/destroy_portgroup, vif_attach, vif_detach, vif_list.
    1.2 - attach_virtual_media, detach_virtual_media.
    1.3 - change_provision_state takes service_steps.
    1.4 - set_target_raid_config. (Release 2026.12.05.)

``[upgrade_levels]conductor`` caps what this client sends. The methods newer than 1.0 have no
equivalent an older conductor could run instead, so above the cap they are refused before
anything is sent (exception.RPCVersionCapped: HTTP 409 naming the option to lift).
"""

from __future__ import annotations

from typing import Any

import oslo_messaging as messaging
from oslo_config import cfg

from agent.common import rpc
from agent.conductor import hash_ring

CONF = cfg.CONF


class ConductorAPI(rpc.RPCClientBase):
    """Calls to ``kiln.conductor``; node calls are routed with ``server=`` to the node's conductor."""

    RPC_API_VERSION = "1.4"
    DEFAULT_TOPIC = rpc.CONDUCTOR_TOPIC
    UPGRADE_LEVEL = "conductor"

    def __init__(
        self,
        transport: messaging.Transport | None = None,
        timeout: float | None = None,
        ring: hash_ring.HashRingManager | None = None,
        version_cap: str | None = None,
    ) -> None:
        super().__init__(transport, version_cap=version_cap, timeout=timeout)
        self.ring = ring or hash_ring.default_manager()

    def conductor_for(self, node: Any) -> str:
        """The host of the conductor managing ``node`` (ConductorNotFound when none is alive)."""
        return self.ring.get_conductor_for(node)

    # The 1.0 methods ask for 1.0 (not the client's newest version) so that a cap still sends them.
    def _node_client(self, node: Any) -> messaging.RPCClient:
        return self.client.prepare(server=self.conductor_for(node), version="1.0")

    def _any_client(self, key: str, conductor_group: str | None = "") -> messaging.RPCClient:
        ring = self.ring.get_ring(conductor_group)
        return self.client.prepare(server=ring.get_hosts(key)[0], version="1.0")

    # --- nodes ---------------------------------------------------------------------------------
    def create_node(self, ctxt: dict, values: dict) -> dict:
        """Create a node on a conductor of its conductor group; return it."""
        client = self._any_client(values["uuid"], values.get("conductor_group"))
        return client.call(ctxt, "create_node", values=values)

    def update_node(self, ctxt: dict, node: Any, values: dict) -> dict:
        """Change a node's fields; return it."""
        return self._node_client(node).call(ctxt, "update_node", node_ident=_uuid(node), values=values)

    def destroy_node(self, ctxt: dict, node: Any) -> None:
        """Delete a node."""
        self._node_client(node).call(ctxt, "destroy_node", node_ident=_uuid(node))

    def change_provision_state(self, ctxt: dict, node: Any, verb: str, **kwargs: Any) -> None:
        """Start provision action ``verb`` (configdrive, clean_steps, ... as keyword arguments)."""
        client = self._node_client(node)
        if kwargs.get("service_steps") is not None:
            client = self._since("1.3", "change_provision_state with service_steps", node)
        client.call(ctxt, "change_provision_state", node_ident=_uuid(node), verb=verb, **kwargs)

    def change_power_state(self, ctxt: dict, node: Any, target: str, timeout: int | None = None) -> None:
        """Start a power change."""
        self._node_client(node).call(
            ctxt, "change_power_state", node_ident=_uuid(node), target=target, timeout=timeout
        )

    def set_boot_device(self, ctxt: dict, node: Any, device: str, persistent: bool = False) -> None:
        """Set the node's boot device."""
        self._node_client(node).call(
            ctxt, "set_boot_device", node_ident=_uuid(node), device=device, persistent=persistent
        )

    def get_boot_device(self, ctxt: dict, node: Any) -> dict:
        """Return the node's boot device."""
        return self._node_client(node).call(ctxt, "get_boot_device", node_ident=_uuid(node))

    def get_supported_boot_devices(self, ctxt: dict, node: Any) -> list[str]:
        """Return the boot devices the node supports."""
        return self._node_client(node).call(ctxt, "get_supported_boot_devices", node_ident=_uuid(node))

    def validate_driver_interfaces(self, ctxt: dict, node: Any) -> dict:
        """Validate the node's interfaces."""
        return self._node_client(node).call(ctxt, "validate_driver_interfaces", node_ident=_uuid(node))

    def set_node_traits(self, ctxt: dict, node: Any, traits: list[str]) -> list[str]:
        """Replace the node's traits."""
        return self._node_client(node).call(ctxt, "set_node_traits", node_ident=_uuid(node), traits=traits)

    def add_node_trait(self, ctxt: dict, node: Any, trait: str) -> None:
        """Add a trait to the node."""
        self._node_client(node).call(ctxt, "add_node_trait", node_ident=_uuid(node), trait=trait)

    def remove_node_trait(self, ctxt: dict, node: Any, trait: str | None) -> None:
        """Remove a trait (or all, when None) from the node."""
        self._node_client(node).call(ctxt, "remove_node_trait", node_ident=_uuid(node), trait=trait)

    # --- portgroups and VIFs (1.1) ----------------------------------------------------------------
    def _since(self, version: str, method: str, node: Any) -> messaging.RPCClient:
        self.require(version, method)
        return self._node_client(node).prepare(version=version)

    def create_portgroup(self, ctxt: dict, node: Any, values: dict) -> dict:
        """Create a portgroup of ``node``."""
        return self._since("1.1", "create_portgroup", node).call(ctxt, "create_portgroup", values=values)

    def update_portgroup(self, ctxt: dict, node: Any, portgroup_uuid: str, values: dict) -> dict:
        """Change a portgroup of ``node``."""
        return self._since("1.1", "update_portgroup", node).call(
            ctxt, "update_portgroup", portgroup_ident=portgroup_uuid, values=values
        )

    def destroy_portgroup(self, ctxt: dict, node: Any, portgroup_uuid: str) -> None:
        """Delete an empty portgroup of ``node``."""
        self._since("1.1", "destroy_portgroup", node).call(
            ctxt, "destroy_portgroup", portgroup_ident=portgroup_uuid
        )

    def vif_attach(self, ctxt: dict, node: Any, vif_info: dict) -> None:
        """Attach the VIF ``vif_info["id"]`` to a free port or portgroup of ``node``."""
        self._since("1.1", "vif_attach", node).call(
            ctxt, "vif_attach", node_ident=_uuid(node), vif_info=vif_info
        )

    def vif_detach(self, ctxt: dict, node: Any, vif_id: str) -> None:
        """Detach the VIF ``vif_id`` from ``node``."""
        self._since("1.1", "vif_detach", node).call(ctxt, "vif_detach", node_ident=_uuid(node), vif_id=vif_id)

    def vif_list(self, ctxt: dict, node: Any) -> list[dict]:
        """The VIFs attached to ``node``: [{"id": ...}]."""
        return self._since("1.1", "vif_list", node).call(ctxt, "vif_list", node_ident=_uuid(node))

    # --- virtual media (1.2) ---------------------------------------------------------------------
    def attach_virtual_media(
        self, ctxt: dict, node: Any, device_type: str, image_url: str, download_source: str
    ) -> None:
        """Insert ``image_url`` into ``node``'s virtual ``device_type``."""
        self._since("1.2", "attach_virtual_media", node).call(
            ctxt,
            "attach_virtual_media",
            node_ident=_uuid(node),
            device_type=device_type,
            image_url=image_url,
            download_source=download_source,
        )

    def detach_virtual_media(self, ctxt: dict, node: Any, device_types: list[str] | None) -> None:
        """Eject ``node``'s virtual media (of ``device_types``, or all)."""
        self._since("1.2", "detach_virtual_media", node).call(
            ctxt, "detach_virtual_media", node_ident=_uuid(node), device_types=device_types
        )

    def set_target_raid_config(self, ctxt: dict, node: Any, target_raid_config: dict) -> None:
        """Store ``node``'s target RAID configuration (1.4)."""
        self._since("1.4", "set_target_raid_config", node).call(
            ctxt, "set_target_raid_config", node_ident=_uuid(node), target_raid_config=target_raid_config
        )

    # --- ports -----------------------------------------------------------------------------------
    def create_port(self, ctxt: dict, node: Any, values: dict) -> dict:
        """Create a port of ``node``."""
        return self._node_client(node).call(ctxt, "create_port", values=values)

    def update_port(self, ctxt: dict, node: Any, port_uuid: str, values: dict) -> dict:
        """Change a port of ``node``."""
        return self._node_client(node).call(ctxt, "update_port", port_ident=port_uuid, values=values)

    def destroy_port(self, ctxt: dict, node: Any, port_uuid: str) -> None:
        """Delete a port of ``node``."""
        self._node_client(node).call(ctxt, "destroy_port", port_ident=port_uuid)

    # --- allocations -------------------------------------------------------------------------------
    def create_allocation(self, ctxt: dict, values: dict) -> dict:
        """Create an allocation; a conductor picks its node in the background."""
        return self._any_client(values["uuid"]).call(ctxt, "create_allocation", values=values)

    def update_allocation(self, ctxt: dict, ident: str, values: dict) -> dict:
        """Change an allocation's name or extra."""
        return self._any_client(ident).call(ctxt, "update_allocation", ident=ident, values=values)

    def destroy_allocation(self, ctxt: dict, ident: str, node: Any = None) -> None:
        """Delete an allocation (routed to its node's conductor when it has one)."""
        client = self._node_client(node) if node is not None else self._any_client(ident)
        client.call(ctxt, "destroy_allocation", ident=ident)


def _uuid(node: Any) -> str:
    return node["uuid"] if isinstance(node, dict) else node.uuid
