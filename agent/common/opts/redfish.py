"""Options of the Redfish power and management interfaces (sushy)."""

from oslo_config import cfg

GROUP = "redfish"

OPTS = [
    cfg.IntOpt(
        "power_state_change_timeout",
        default=60,
        min=1,
        help="Seconds to wait for a Redfish system to reach a requested power state before failing.",
    ),
    cfg.FloatOpt(
        "power_state_poll_interval",
        default=1.0,
        min=0.05,
        help="Seconds between reads of the power state while waiting for a change.",
    ),
    cfg.IntOpt(
        "connection_timeout",
        default=30,
        min=1,
        help="Seconds to wait for the BMC to answer one HTTP request.",
    ),
    cfg.IntOpt(
        "connection_attempts",
        default=2,
        min=1,
        help="Attempts of one HTTP request to the BMC when it cannot be reached or drops the "
        "connection, the first included.",
    ),
    cfg.FloatOpt(
        "connection_retry_interval",
        default=1.0,
        min=0.01,
        help="Seconds between two attempts of one HTTP request to the BMC.",
    ),
    cfg.IntOpt(
        "connection_cache_size",
        default=100,
        min=0,
        help="BMC connections kept open for reuse; 0 opens a new one per operation.",
    ),
]
