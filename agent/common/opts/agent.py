"""Options of the node daemon, kiln-agent.

``[DEFAULT]transport_url`` is oslo.messaging's own option and is not redefined here.
"""

from oslo_config import cfg

GROUP = "agent"

OPTS = [
    cfg.StrOpt(
        "root",
        help="Host root the agent inventories: / or a captured sysfs/procfs tree. "
        "Unset: [inventory]root is used.",
    ),
    cfg.StrOpt(
        "state_dir",
        default="/var/lib/kiln/agent",
        help="Directory where the agent keeps its node UUID and one-time agent token (mode 0600), "
        "so that a restarted agent can reuse the token the conductor handed out once.",
    ),
    cfg.StrOpt("conductor_topic", default="kiln.conductor", help="RPC topic of the conductors."),
    cfg.IntOpt("lookup_timeout", default=10, min=1, help="Seconds one lookup call waits for a conductor."),
    cfg.IntOpt(
        "lookup_max_attempts",
        default=0,
        min=0,
        help="Lookup attempts before the agent gives up and exits with an error; 0 retries forever.",
    ),
    cfg.IntOpt("report_timeout", default=30, min=1, help="Seconds one report_inventory call waits."),
    cfg.IntOpt(
        "report_max_attempts",
        default=0,
        min=0,
        help="report_inventory attempts before a report is dropped; 0 (the default) retries until "
        "the conductor acknowledges, so no report is lost.",
    ),
    cfg.FloatOpt("backoff_initial", default=1.0, min=0.01, help="First delay (s) between two retries."),
    cfg.FloatOpt("backoff_factor", default=2.0, min=1.0, help="Each retry delay is the last one times this."),
    cfg.FloatOpt("backoff_max", default=60.0, min=0.01, help="Longest delay (s) between two retries."),
    cfg.IntOpt(
        "rpc_send_retries",
        default=2,
        min=0,
        help="Broker reconnection attempts inside one send before the agent's own backoff takes over.",
    ),
    cfg.IntOpt(
        "heartbeat_interval",
        default=30,
        min=1,
        help="Heartbeat interval (s) used when the conductor's lookup answer names none.",
    ),
    cfg.FloatOpt(
        "heartbeat_jitter",
        default=0.1,
        min=0.0,
        max=0.5,
        help="Each heartbeat interval is randomised by +- this fraction so a fleet does not beat in step.",
    ),
    cfg.BoolOpt("watch", default=True, help="Watch for hardware changes and report them."),
    cfg.FloatOpt(
        "watch_interval",
        default=30.0,
        min=0.1,
        help="Seconds between two full rescans; the only source of change events when udevd is absent "
        "or the root is a captured tree, and a backstop for changes udev does not announce "
        "(NIC carrier and speed, PCIe link width).",
    ),
    cfg.FloatOpt(
        "watch_settle",
        default=1.0,
        min=0.0,
        help="Quiet time (s) after a udev event before re-collecting, so a burst of events gives one report.",
    ),
    cfg.FloatOpt(
        "rpc_stop_timeout",
        default=2.0,
        min=0.1,
        help="Seconds to wait for the agent's RPC server to stop on shutdown.",
    ),
    cfg.StrOpt(
        "config_public_key_file",
        help="PEM file of the ed25519 public key the configuration fetched from kiln.config_url must be "
        "signed with (the conductor's [broker]config_signing_key_file). The kernel parameter "
        "kiln.config_key takes precedence. With neither, the configuration is used unsigned.",
    ),
]
