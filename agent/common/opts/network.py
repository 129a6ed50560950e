"""Options of network setup: the conductor-wide service networks and portgroup defaults.

Networks themselves are declared in ``[network:NAME]`` sections and switches in
``[genericswitch:NAME]`` sections (networking-generic-switch's own format); see the README.
"""

from oslo_config import cfg

GROUP = "network"

_SERVICE = (
    "Name of the declared network ([network:NAME]) nodes are put on for {what}, unless a node's "
    "driver_info {key} names another. Used by the multitenant network interface."
)


def service_network_opts(template: str) -> list[cfg.Opt]:
    """The four service-network options (provisioning, cleaning, inspection, rescuing) of a group."""
    other = " (default: the provisioning network)"
    return [
        cfg.StrOpt(
            "provisioning_network", help=template.format(what="deployment", key="provisioning_network")
        ),
        cfg.StrOpt("cleaning_network", help=template.format(what="cleaning" + other, key="cleaning_network")),
        cfg.StrOpt(
            "inspection_network", help=template.format(what="inspection" + other, key="inspection_network")
        ),
        cfg.StrOpt("rescuing_network", help=template.format(what="rescue" + other, key="rescuing_network")),
    ]


OPTS = [
    *service_network_opts(_SERVICE),
    cfg.StrOpt(
        "default_portgroup_mode",
        default="active-backup",
        help="Bond mode of a portgroup created without one (Linux bonding mode names, e.g. 802.3ad).",
    ),
]
