"""The conductor's RPC endpoint on topic ``kiln.conductor``: the agents' methods and the API's.

API version history:
    1.0 - lookup, report_inventory, heartbeat, step_result (agents); node, port, provisioning,
          power, boot device, trait and allocation methods (kiln-api).
"""

from __future__ import annotations

import oslo_messaging as messaging

from agent.conductor.agent_endpoints import AgentEndpoints
from agent.conductor.api_endpoints import ApiEndpoints


class ConductorManager(AgentEndpoints, ApiEndpoints):
    """Everything one conductor (``host``) serves over RPC."""

    RPC_API_VERSION = "1.0"
    target = messaging.Target(version=RPC_API_VERSION)

    def __init__(self, host: str) -> None:
        self.host = host
