"""Options of the hardware inventory."""

from oslo_config import cfg

GROUP = "inventory"

OPTS = [
    cfg.StrOpt("root", default="/", help="Host root to inventory: / or a captured sysfs/procfs tree."),
    cfg.BoolOpt("include_md_devices", default=False, help="Report md RAID and dm devices as disks."),
    cfg.BoolOpt(
        "use_nvml",
        default=True,
        help=(
            "Enrich GPUs with NVML (UUID, serial, memory, MIG mode) "
            "when nvidia-ml-py and the driver are present."
        ),
    ),
]
