"""kiln-agent: the daemon on each node."""

from __future__ import annotations

import signal
import sys
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_log import log

from agent.common import config
from agent.common.opts import agent as agent_opts

CONF = cfg.CONF
LOG = log.getLogger(__name__)


def transport_url_configured(conf: cfg.ConfigOpts = CONF) -> bool:
    """Whether [DEFAULT]transport_url was set (config file, command line), not oslo.messaging's default."""
    try:
        oslo_messaging.TransportURL.parse(conf)  # registers oslo.messaging's [DEFAULT] transport options
    except oslo_messaging.InvalidTransportURL as exc:
        from agent.node.cmdline import mask_url

        raise ValueError(f"[DEFAULT]transport_url is invalid: {mask_url(str(exc))}") from None
    location = conf.get_location("transport_url")
    return location is not None and location.location != cfg.Locations.opt_default


def _reparse_with(argv: list[str], extra_file: str) -> None:
    """Parse the command line again with ``extra_file`` loaded after the config files already in use."""
    if any(a == "--config-file" or a.startswith("--config-file=") for a in argv):
        config.parse_args([*argv, "--config-file", extra_file])
    else:  # the default files (/etc/kiln/kiln.conf ...) were used: keep them, add ours after them
        config.parse_args(argv, default_config_files=[*(CONF.config_file or []), extra_file])


def config_public_key(boot: Any) -> Any:
    """The key kiln.config_url's file must be signed with (kiln.config_key, else the file); or None."""
    if not boot.config_key and not CONF.agent.config_public_key_file:
        return None
    from agent.common import config_signing

    if boot.config_key:
        return config_signing.parse_public_key(boot.config_key, f"kiln.config_key in {boot.source}")
    return config_signing.load_public_key(CONF.agent.config_public_key_file)


def boot_config(argv: list[str]):
    """Read the kernel command line; without a configured transport_url, take it from there.

    Returns (transport URL to use or None for [DEFAULT]transport_url, the BootParams). kiln.config_url
    is fetched into [agent]state_dir and loaded as one more config file; kiln.transport_url is used
    as it is. Raises BootParamError (a ValueError) naming a garbled parameter or unusable config.
    """
    from agent.node import cmdline
    from agent.node.backoff import Backoff

    root = CONF.agent.root or CONF.inventory.root
    boot = cmdline.read_boot_params(root)
    if transport_url_configured():
        return None, boot
    if boot.config_url:
        public_key = config_public_key(boot)
        path = cmdline.fetch_config(
            boot.config_url,
            CONF.agent.state_dir,
            timeout=CONF.agent.lookup_timeout,
            attempts=CONF.agent.lookup_max_attempts,
            backoff=Backoff(CONF.agent.backoff_initial, CONF.agent.backoff_factor, CONF.agent.backoff_max),
            public_key=public_key,
        )
        _reparse_with(argv, path)
        if transport_url_configured():
            LOG.info("Transport URL from %s (%s=%s)", path, cmdline.CONFIG_URL, boot.config_url)
            return None, boot
        if not boot.transport_url:
            raise cmdline.BootParamError(
                f"{cmdline.CONFIG_URL}={boot.config_url} (from {boot.source}) gave a configuration "
                "without [DEFAULT]transport_url; add it to the file the conductor serves"
            )
    if boot.transport_url:
        LOG.info("Transport URL %s from %s", cmdline.mask_url(boot.transport_url), boot.source)
        return boot.transport_url, boot
    LOG.warning(
        "No [DEFAULT]transport_url configured and %s names neither %s nor %s: using oslo.messaging's default",
        boot.source,
        cmdline.TRANSPORT_URL,
        cmdline.CONFIG_URL,
    )
    return None, boot


def main(argv: list[str] | None = None) -> int:
    """Run kiln-agent until SIGTERM or SIGINT; return the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    log.register_options(CONF)
    config.parse_args(args)
    log.setup(CONF, "kiln-agent")

    from agent.node.backoff import GaveUp
    from agent.node.daemon import Agent  # after logging, so start-up problems are logged

    try:
        for opt in agent_opts.OPTS:  # oslo.config checks values on first use: check all now
            getattr(CONF.agent, opt.dest)
        transport_url, boot = boot_config(args)
        agent = Agent(CONF, transport_url=transport_url, boot=boot)
    except (cfg.Error, ValueError, OSError, GaveUp) as exc:
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
