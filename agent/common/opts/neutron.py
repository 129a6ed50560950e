"""Options of the ``neutron`` network interface: where Neutron is and its service networks.

Authentication is keystoneauth's, loaded from this group (``auth_type`` and the plugin's options,
e.g. ``password`` with ``auth_url``, ``username``, ...); ``auth_type = none`` with ``url`` reaches a
Neutron run with ``auth_strategy = noauth``.
"""

from oslo_config import cfg

from agent.common.opts.network import service_network_opts

try:  # the conductor has keystoneauth1 (openstacksdk's); the deploy ramdisk's agent does not
    from keystoneauth1 import loading as ks_loading
except ImportError:  # pragma: no cover - exercised by the ramdisk build's import check
    ks_loading = None

GROUP = "neutron"

_SERVICE = (
    "Neutron network (name or UUID) nodes are put on for {what}, unless a node's driver_info {key} "
    "names another. Used by the neutron network interface."
)

OPTS = [
    cfg.URIOpt(
        "url",
        schemes=["http", "https"],
        help="Neutron's endpoint (e.g. http://neutron:9696). Unset: found in the Keystone catalog.",
    ),
    cfg.StrOpt("region_name", help="Region of Neutron's endpoint in the Keystone catalog."),
    *service_network_opts(_SERVICE),
    cfg.IntOpt(
        "port_active_timeout",
        default=60,
        min=0,
        help="Seconds to wait for a bound Neutron port to go ACTIVE (the switch port configured by the "
        "mechanism driver, e.g. networking-generic-switch); 0: do not wait.",
    ),
    *(ks_loading.get_auth_common_conf_options() if ks_loading else []),
    *(ks_loading.get_session_conf_options() if ks_loading else []),
]
