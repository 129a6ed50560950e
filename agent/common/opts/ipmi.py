"""Options of the IPMI power and management interfaces (pyghmi)."""

from oslo_config import cfg

GROUP = "ipmi"

OPTS = [
    cfg.IntOpt(
        "power_state_change_timeout",
        default=60,
        min=1,
        help="Seconds to wait for a BMC to report a requested power state before failing.",
    ),
    cfg.FloatOpt(
        "power_state_poll_interval",
        default=1.0,
        min=0.05,
        help="Seconds between reads of the power state while waiting for a change.",
    ),
]
