"""kiln-agent: the daemon on each node."""

from __future__ import annotations

import signal
import sys

from oslo_config import cfg
from oslo_log import log

from agent.common import config
from agent.common.opts import agent as agent_opts

CONF = cfg.CONF
LOG = log.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Run kiln-agent until SIGTERM or SIGINT; return the exit status."""
    log.register_options(CONF)
    config.parse_args(sys.argv[1:] if argv is None else argv)
    log.setup(CONF, "kiln-agent")

    from agent.node.daemon import Agent  # after logging, so start-up problems are logged

    try:
        for opt in agent_opts.OPTS:  # oslo.config checks values on first use: check all now
            getattr(CONF.agent, opt.dest)
        agent = Agent(CONF)
    except (cfg.Error, ValueError, OSError) as exc:
        LOG.error("kiln-agent cannot start: %s", exc)
        return 2

    def _on_signal(signum: int, _frame) -> None:
        LOG.info("Received %s, stopping", signal.Signals(signum).name)
        agent.request_stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    return agent.run()


if __name__ == "__main__":
    sys.exit(main())
