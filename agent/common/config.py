"""Kiln's configuration: every option is declared with oslo.config in ``opts/`` and registered here.

There is one way to register options: importing this module registers every Kiln option on the
global ``CONF``, so a module only needs ``from agent.common.config import CONF``. A private
``cfg.ConfigOpts`` gets them with ``register_opts(conf)``.
"""

from __future__ import annotations

import importlib

from oslo_config import cfg

CONF = cfg.CONF

# Each module defines ``GROUP`` (a name or None for DEFAULT) and ``OPTS``.
# Add a module here when an area gains options; keep the list sorted.
_OPT_MODULES = [
    "agent.common.opts.agent",
    "agent.common.opts.api",
    "agent.common.opts.auth",
    "agent.common.opts.broker",
    "agent.common.opts.conductor",
    "agent.common.opts.database",
    "agent.common.opts.default",
    "agent.common.opts.deploy",
    "agent.common.opts.dnsmasq",
    "agent.common.opts.fake",
    "agent.common.opts.inventory",
    "agent.common.opts.ipmi",
    "agent.common.opts.network",
    "agent.common.opts.neutron",
    "agent.common.opts.pxe",
    "agent.common.opts.redfish",
    "agent.common.opts.steps",
    "agent.common.opts.turnover",
    "agent.common.opts.upgrade_levels",
]


def _modules() -> list:
    return [importlib.import_module(name) for name in _OPT_MODULES]


def register_opts(conf: cfg.ConfigOpts = CONF) -> cfg.ConfigOpts:
    """Register every Kiln option on ``conf`` (idempotent)."""
    for mod in _modules():
        conf.register_opts(mod.OPTS, group=mod.GROUP)
    return conf


def list_opts() -> list[tuple[str | None, list]]:
    """Return (group, options) pairs for oslo-config-generator."""
    return [(mod.GROUP, list(mod.OPTS)) for mod in _modules()]


def parse_args(argv: list[str] | None = None, conf: cfg.ConfigOpts = CONF, **kwargs) -> cfg.ConfigOpts:
    """Register options and parse the command line and config files."""
    register_opts(conf)
    conf(argv, project="kiln", **kwargs)
    return conf


register_opts(CONF)
