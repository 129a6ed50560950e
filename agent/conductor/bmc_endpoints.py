"""The conductor's RPC methods for a node's BMC capabilities (RPC 1.4): the target RAID configuration."""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging

from agent.common import exception
from agent.common.utils import expect_kiln_errors
from agent.conductor import task_manager

LOG = logging.getLogger(__name__)


class BMCEndpoints:
    """Mixed into the ConductorManager."""

    def set_target_raid_config(self, ctxt: dict, node_ident: str, target_raid_config: dict[str, Any]) -> None:
        """Store a node's target RAID configuration once its raid interface accepts it ({} clears it)."""
        if not isinstance(target_raid_config, dict):
            raise exception.InvalidParameterValue(
                err=f"Node {node_ident}: the target RAID configuration must be an object, "
                f"not {target_raid_config!r}."
            )
        with task_manager.acquire(ctxt, node_ident, purpose="set target RAID config") as task:
            if target_raid_config:
                task.driver.raid.validate_raid_config(task, target_raid_config)
            task.update_node({"target_raid_config": target_raid_config})
            LOG.info(
                "Node %s: target RAID configuration %s",
                task.node.uuid,
                "set" if target_raid_config else "cleared",
            )


expect_kiln_errors(BMCEndpoints)
