"""``[upgrade_levels]``: the RPC version caps of a rolling upgrade, given as versions or release names.

During an upgrade old and new services share the message bus. Each RPC client sends the newest
version its peer of the oldest running release understands: ``[upgrade_levels]conductor`` caps
what kiln-api, kiln-conductor and kiln-agent send to the conductors, ``[upgrade_levels]agent``
what the conductors send to the agents. A client checks ``can_send_version`` before each method
or argument newer than 1.0 and either leaves the new part out or refuses with
exception.RPCVersionCapped, which names the option to lift.
"""

from __future__ import annotations

import re

from oslo_config import cfg

from agent.common.opts import upgrade_levels as opts

#: The RPC API versions each Kiln release speaks, by release name (a version string also works).
#: 2026.12.04 is commit 4e4b810 (the first release with upgrades tested against it).
RELEASES: dict[str, dict[str, str]] = {
    "2026.12.04": {"conductor": "1.0", "agent": "1.0"},
    "2026.12.05": {"conductor": "1.4", "agent": "1.0"},
}

_VERSION = re.compile(r"^\d+\.\d+$")


def version_cap(service: str, conf: cfg.ConfigOpts = cfg.CONF) -> str | None:
    """The version cap ``[upgrade_levels]<service>`` sets (a release name resolved), or None for none."""
    conf.register_opts(opts.OPTS, group=opts.GROUP)
    value = conf.upgrade_levels[service]
    if value is None or not value.strip():
        return None
    value = value.strip()
    if _VERSION.match(value):
        return value
    if value in RELEASES:
        return RELEASES[value][service]
    raise ValueError(
        f"[upgrade_levels]{service} = {value!r} is neither an RPC API version (such as 1.0) nor a "
        f"Kiln release name ({', '.join(sorted(RELEASES))})"
    )
