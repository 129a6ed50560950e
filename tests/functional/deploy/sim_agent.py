"""A simulated node's kiln-agent process: the real daemon, steps on a file disk ([agent]disk_map).

Usage: python -m tests.functional.deploy.sim_agent --config-file FILE
Until the daemon wires the step runner itself, this adds it (the real StepRunner and steps).
"""

from __future__ import annotations

import signal
import sys

from oslo_config import cfg

from agent.common import config, rpc
from agent.node import daemon
from agent.node.endpoints import AgentEndpoint
from agent.node.steps.context import StepContext
from agent.node.steps.runner import StepRunner

CONF = cfg.CONF


class SimAgent(daemon.Agent):
    """kiln-agent whose RPC endpoint runs steps in the background and reports them."""

    def _serve(self, creds) -> None:
        ctx = StepContext(self.conf, self.collect, node_uuid=creds.node_uuid, stop=self.stop_event)

        def report(step: str, result: dict) -> None:
            self.conductor.step_result({}, creds.node_uuid, self.token(), step, result)

        self.runner = StepRunner(ctx, report=report)
        endpoint = AgentEndpoint(
            creds.node_uuid, self.token, self.collect, version=daemon.agent_version(), runner=self.runner
        )
        topic = self.config.get("agent_topic") or rpc.AGENT_TOPIC
        self._server = rpc.get_server(self.transport, topic, creds.node_uuid, [endpoint])
        self._server.start()


def main() -> int:
    """Run the simulated agent until SIGTERM."""
    config.parse_args(sys.argv[1:])
    agent = SimAgent(CONF)
    signal.signal(signal.SIGTERM, lambda *_: agent.request_stop())
    return agent.run()


if __name__ == "__main__":
    sys.exit(main())
