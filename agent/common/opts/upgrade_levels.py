"""Options of a rolling upgrade: the highest RPC API version each client sends, as in Ironic and Nova.

Each option takes a version ("1.0") or the name of a Kiln release (see
agent.common.upgrade_levels.RELEASES); unset, a client sends the newest version it knows.
"""

from oslo_config import cfg

GROUP = "upgrade_levels"

OPTS = [
    cfg.StrOpt(
        "conductor",
        deprecated_opts=[cfg.DeprecatedOpt("conductor_version_cap", group="agent")],
        help="Highest kiln.conductor RPC API version that kiln-api and kiln-agent send "
        "(a version such as 1.0, or a release name such as 2026.12.04) while conductors of an older "
        "release still run. Calls newer than the cap are refused with a message naming this option. "
        "Unset: no cap; lift it once every conductor runs the new release.",
    ),
    cfg.StrOpt(
        "agent",
        help="Highest kiln.agent RPC API version the conductors send to agents (a version such as 1.0, "
        "or a release name) while agents of an older release still run. Unset: no cap; lift it once "
        "every node's agent (ramdisk) runs the new release.",
    ),
]
