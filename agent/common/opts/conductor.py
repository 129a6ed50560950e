"""Options of the conductor: identity, liveness, drivers, hash ring and node locks."""

import socket

from oslo_config import cfg

from agent.common import interfaces

GROUP = "conductor"

_INTERFACES = interfaces.COMPOSED_INTERFACES

# Ironic's names; the fake/noop implementations are the defaults, so a conductor with no
# configuration runs (kiln-demo); production enables ipxe/pxe, direct, agent, flat, redfish or ipmi.
_DEFAULT_ENABLED = {
    "bios": ["no-bios"],
    "boot": ["fake"],
    "deploy": ["fake"],
    "firmware": ["no-firmware"],
    "inspect": ["fake", "no-inspect"],
    "management": ["fake"],
    "network": ["noop"],
    "power": ["fake"],
    "raid": ["agent", "no-raid"],
}

OPTS = [
    cfg.StrOpt(
        "host",
        default=socket.gethostname(),
        sample_default="localhost",
        help="Name of this conductor: unique among conductors sharing a database; it holds node locks.",
    ),
    cfg.StrOpt(
        "conductor_group",
        default="",
        help="Conductor group this conductor serves; nodes with the same conductor_group map to it.",
    ),
    cfg.IntOpt(
        "heartbeat_interval", default=10, min=1, help="Seconds between this conductor's liveness updates."
    ),
    cfg.BoolOpt(
        "periodic_timing_log",
        default=False,
        help="Log how long each periodic pass took (conductor liveness, heartbeat timeouts, callback "
        "timeouts, dead conductors, hash ring), at INFO, as 'Periodic <name> took <s> s (every <n> s)'.",
    ),
    cfg.IntOpt(
        "heartbeat_timeout",
        default=60,
        min=2,
        help="Seconds without a liveness update after which a conductor counts as dead and loses its nodes.",
    ),
    cfg.IntOpt(
        "agent_heartbeat_interval",
        default=30,
        min=1,
        help="Seconds between agent heartbeats; handed to each agent at lookup.",
    ),
    cfg.IntOpt(
        "agent_heartbeat_timeout",
        default=300,
        min=2,
        help="Seconds without an agent heartbeat after which the node is flagged.",
    ),
    cfg.IntOpt(
        "heartbeat_workers",
        default=4,
        min=1,
        help="Threads that handle agent heartbeats. Heartbeats arrive on a topic of their own "
        "(kiln.conductor.heartbeat) with their own RPC server, so a backlog of them never delays "
        "lookups, inventory reports, step results or API calls; few threads keep them from crowding "
        "those out of the interpreter.",
    ),
    cfg.BoolOpt(
        "heartbeat_process",
        default=True,
        help="Serve agent heartbeats in a child process of kiln-conductor (forked at start, with its own "
        "broker and database connections and its own interpreter lock), so that thousands of them per "
        "second never slow down lookups, inventory reports, step results and API calls. Off, or when the "
        "conductor runs on an in-process transport (kiln-demo, tests), threads of the conductor serve them.",
    ),
    cfg.IntOpt(
        "heartbeat_process_nice",
        default=5,
        min=0,
        max=19,
        help="Niceness the heartbeat process adds to its own: heartbeats are casts, written in batches "
        "once a second, so when cores are short the scheduler should run lookups, inventory reports "
        "and API calls first. 0 keeps the conductor's priority.",
    ),
    cfg.BoolOpt(
        "enable_discovery",
        default=True,
        help="Enroll unknown nodes that look up (state enroll, with their ports); when off they are refused.",
    ),
    cfg.StrOpt(
        "discovery_driver",
        default="fake-hardware",
        help="Hardware type given to nodes enrolled by discovery.",
    ),
    cfg.ListOpt(
        "enabled_hardware_types",
        default=["fake-hardware"],
        help="Hardware types this conductor loads (entry points in kiln.hardware_types).",
    ),
    *[
        cfg.ListOpt(
            f"enabled_{iface}_interfaces",
            default=_DEFAULT_ENABLED[iface],
            help=f"{iface.capitalize()} interfaces this conductor loads "
            f"(entry points in kiln.hardware.interfaces.{iface}).",
        )
        for iface in _INTERFACES
    ],
    *[
        cfg.StrOpt(
            f"default_{iface}_interface",
            help=f"{iface.capitalize()} interface for nodes that name none; unset: the first of the "
            "hardware type's supported interfaces that is enabled.",
        )
        for iface in _INTERFACES
    ],
    cfg.IntOpt(
        "hash_ring_replicas",
        default=1,
        min=1,
        help="How many conductors each node maps to on the hash ring (the first one manages it).",
    ),
    cfg.IntOpt(
        "hash_partition_exponent",
        default=7,
        min=1,
        max=16,
        help="Each conductor gets 2**N points on the hash ring; more points spread nodes more evenly.",
    ),
    cfg.IntOpt(
        "hash_ring_reset_interval",
        default=15,
        min=0,
        help="Seconds a built hash ring is reused before the list of live conductors is read again.",
    ),
    cfg.IntOpt(
        "node_locked_retry_attempts",
        default=3,
        min=1,
        help="Attempts to take a node's lock before giving up with NodeLocked.",
    ),
    cfg.FloatOpt(
        "node_locked_retry_interval",
        default=1.0,
        min=0,
        help="Seconds between attempts to take a node's lock.",
    ),
    cfg.StrOpt(
        "wait_timing_log",
        help="For benchmarks: append every wait inside Kiln on a node's path (a node's lock, a worker "
        "of the pool, a heartbeat that found the node locked) and every BMC call, as JSON lines "
        "{node, kind, start, duration}, to this file. Unset: nothing is timed.",
    ),
    cfg.IntOpt(
        "workers_pool_size",
        default=100,
        min=2,
        help="Worker threads of one conductor process: the nodes it deploys, cleans, inspects or "
        "powers at once (the agents' heartbeats and step results run there too). When all are busy, a "
        "new provision or power action is refused with HTTP 503 (NoFreeConductorWorker) and the "
        "node is left as it was; the next step of an operation under way waits its turn instead.",
    ),
    cfg.IntOpt(
        "deploy_callback_timeout",
        default=1800,
        min=0,
        help="Seconds a node may wait for its agent in a wait state before it fails; 0 disables.",
    ),
    cfg.IntOpt(
        "service_callback_timeout",
        default=1800,
        min=0,
        help='Seconds a node may wait for its agent in "service wait" before servicing fails '
        '("service failed"); 0 disables.',
    ),
    cfg.IntOpt(
        "rescue_callback_timeout",
        default=1800,
        min=0,
        help='Seconds a node may wait for its rescue agent in "rescue wait" before rescue fails '
        '("rescue failed"); 0 disables.',
    ),
    cfg.StrOpt(
        "rescue_password_hash_algorithm",
        default="sha256",
        choices=["sha256", "sha512"],
        help="crypt(3) scheme of the stored rescue password hash ($5$ sha256-crypt or $6$ sha512-crypt); "
        "the agent writes that hash into the ramdisk's /etc/shadow for user rescue.",
    ),
    cfg.IntOpt(
        "sync_power_state_interval",
        default=60,
        min=0,
        help="Seconds between power state syncs with the BMC (each node not in a transient state, not "
        "locked: its power state, and with enable_health_monitoring its health, read into the database); "
        "0 disables.",
    ),
    cfg.IntOpt(
        "power_state_sync_max_retries",
        default=3,
        min=1,
        help="Consecutive failed power state reads after which the power sync puts a node in maintenance "
        '(fault "power failure"); a later successful read takes it out again.',
    ),
    cfg.BoolOpt(
        "enable_health_monitoring",
        default=True,
        help="Whether the power state sync also reads the hardware health the BMC reports (Redfish "
        "Status.Health) into the node's health field (API 1.109).",
    ),
    cfg.BoolOpt(
        "node_history",
        default=True,
        help="Whether the conductor records node history events (errors, power faults and recoveries), "
        "served at /v1/nodes/{node}/history.",
    ),
    cfg.IntOpt(
        "node_history_max_entries",
        default=300,
        min=0,
        help="History events kept per node (the oldest are dropped first); 0 keeps all.",
    ),
    cfg.PortOpt(
        "metrics_port",
        default=0,
        help="TCP port on which kiln-conductor serves its Prometheus metrics (provision phase durations, "
        "failures, RPC handling times, inventory drift) at /metrics; 0 serves none. The fleet itself "
        "(nodes, GPUs, heartbeat ages) is served by kiln-api at /metrics.",
    ),
    cfg.HostAddressOpt(
        "metrics_host", default="0.0.0.0", help="Address kiln-conductor's metrics endpoint listens on."
    ),
    cfg.StrOpt(
        "metrics_dir",
        help="Directory where kiln-conductor and its heartbeat process write their metric values for the "
        "endpoint to add up (emptied at start); unset: a new temporary directory, removed at stop.",
    ),
]
