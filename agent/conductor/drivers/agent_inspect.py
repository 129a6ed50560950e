"""The "agent" inspect interface: boot the agent, let it report its inventory, power off.

inspect_hardware PXE-boots the node into the agent and leaves it in "inspect wait". The agent's
report_inventory stores the inventory and derives the node's properties, traits and ports (agent
endpoints); then ``inventory_received`` powers the node off, removes the ramdisk boot config and
moves the node to "manageable".
"""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging

from agent.common import states
from agent.common.utils import utcnow
from agent.conductor import agent_boot, failures
from agent.conductor.drivers import base

LOG = logging.getLogger(__name__)


class AgentInspect(base.InspectInterface):
    """In-band inspection by the Kiln agent."""

    def validate(self, task) -> None:
        """The node must be bootable into the agent."""
        task.driver.boot.validate(task)
        task.driver.power.validate(task)

    def inspect_hardware(self, task) -> str | None:
        """Boot the agent and wait in "inspect wait" for its inventory."""
        agent_boot.boot_agent_on(task, task.driver.network.add_inspection_network)
        return states.INSPECTWAIT

    def inventory_received(self, task, inventory: dict[str, Any]) -> None:
        """The agent reported (the inventory is stored): power off and finish inspection."""
        if task.node.provision_state != states.INSPECTWAIT:
            return
        task.update_node({"inspection_finished_at": utcnow()})
        problems = agent_boot.undo_agent_boot(task)
        try:
            task.driver.network.remove_inspection_network(task)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"removing the inspection network failed: {exc}")
        if problems:
            failures.fail(
                task,
                f"Inspection of node {task.node.uuid} got the inventory but could not finish: "
                f"{'; '.join(problems)}.",
            )
            return
        task.process_event("done")
        LOG.info("Node %s inspected", task.node.uuid)
