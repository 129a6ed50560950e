"""Options of the agent's steps (image writing, configdrive, erasure, power, logs) and LLDP listener."""

from oslo_config import cfg

GROUP = "agent"

OPTS = [
    cfg.DictOpt(
        "disk_map",
        default={},
        help="Simulated nodes: maps a disk name from the inventory to a file or loop device standing in "
        "for it (e.g. /dev/vda:/var/tmp/node1-vda.img). Every step that touches a disk goes through it.",
    ),
    cfg.BoolOpt(
        "allow_md5",
        default=False,
        help="Accept md5 image checksums. md5 is broken for integrity checks; prefer sha256 or sha512.",
    ),
    cfg.BoolOpt(
        "allow_power_actions",
        default=False,
        help="Let power_off and reboot act on this host through /proc/sysrq-trigger. "
        "False: the steps only report what they would have done (simulated nodes, tests).",
    ),
    cfg.IntOpt(
        "image_chunk_mib", default=4, min=1, max=256, help="Size (MiB) of each read/write while streaming."
    ),
    cfg.FloatOpt(
        "image_connect_timeout", default=30.0, min=0.1, help="Seconds to wait to connect to the image server."
    ),
    cfg.FloatOpt(
        "image_read_timeout", default=300.0, min=0.1, help="Seconds without data before a download fails."
    ),
    cfg.BoolOpt("image_verify_tls", default=True, help="Verify the image server's TLS certificate."),
    cfg.StrOpt("image_ca_file", help="CA bundle to verify HTTPS image servers with (default: the system's)."),
    cfg.StrOpt(
        "image_tmp_dir",
        help="Directory where qcow2 images are downloaded before conversion (default: the system temp dir).",
    ),
    cfg.IntOpt("erase_concurrency", default=4, min=1, help="Disks erased at the same time by erase_devices."),
    cfg.IntOpt(
        "erase_verify_samples",
        default=16,
        min=1,
        help="Sample blocks read back after a discard to verify that the disk reads zeros.",
    ),
    cfg.StrOpt("log_file", help="The agent's log file collect_logs packs (unset: none)."),
    cfg.IntOpt("collect_logs_journal_lines", default=2000, min=0, help="journalctl lines in collect_logs."),
    cfg.IntOpt(
        "step_results_kept", default=100, min=1, help="Finished step results kept for get_step_status."
    ),
    cfg.BoolOpt("lldp", default=True, help="Listen for LLDP on every link in the background."),
    cfg.ListOpt(
        "lldp_interfaces", default=[], help="Links to listen on for LLDP (empty: every physical link)."
    ),
    cfg.IntOpt(
        "lldp_wait",
        default=0,
        min=0,
        help="Seconds the agent listens for LLDP on every link before it reports its first inventory "
        "(so inspection finds the switch ports). 0: report at once; set it only where switches send "
        "LLDP, or every boot waits this long.",
    ),
]
