"""Options of deployment, cleaning and inspection through the agent ("direct" deploy, "agent" inspect)."""

from oslo_config import cfg, types

GROUP = "deploy"

OPTS = [
    cfg.IntOpt(
        "erase_devices_priority",
        default=0,
        min=0,
        help="Priority of the full disk erase (erase_devices) in automated cleaning; 0 leaves it out, "
        "so only the metadata erase runs. A full erase of large disks can take hours.",
    ),
    cfg.IntOpt(
        "erase_devices_metadata_priority",
        default=99,
        min=0,
        help="Priority of the metadata erase (partition tables, signatures, backup GPT) in automated "
        "cleaning; 0 leaves it out. Ignored while erase_devices runs, since that wipes everything.",
    ),
    cfg.IntOpt(
        "verify_gpus_priority",
        default=0,
        min=0,
        help="Priority of the GPU acceptance gate (verify_gpus) in automated cleaning; 0 leaves it out "
        "(fleets without GPUs). A node failing it is quarantined: clean failed, maintenance on, trait "
        "CUSTOM_GPU_QUARANTINE. Higher priorities run first: above erase_devices_metadata_priority "
        "checks the GPUs before the disks are erased.",
    ),
    cfg.ListOpt(
        "verify_gpus_xids",
        item_type=types.Integer(min=0),
        default=[48, 63, 64, 74, 79, 92, 94, 95, 119, 120, 140],
        help="NVIDIA Xid numbers that fail the GPU acceptance gate when the kernel log of the agent's "
        "boot has them (48 double-bit ECC, 63/64 row remapping, 74 NVLink, 79 fallen off the bus, "
        "92 high single-bit ECC rate, 94/95 contained/uncontained ECC, 119/120 GSP, 140 unrecovered ECC).",
    ),
    cfg.IntOpt(
        "burnin_gpus_priority",
        default=0,
        min=0,
        help="Priority of the GPU burn-in (burnin_gpus: DCGM diagnostics, else cupy matrix multiplies) in "
        "automated cleaning; 0 leaves it out. It takes [deploy]burnin_gpus_duration seconds or more. A node "
        "failing it is quarantined as by verify_gpus. Manual cleaning can ask for it with any priority.",
    ),
    cfg.IntOpt(
        "burnin_gpus_duration",
        default=300,
        min=1,
        help="Seconds the GPU burn-in runs when its step names no duration. With DCGM it picks the "
        "diagnostic level: under 120 s level 1, under 1800 s level 2, under 3600 s level 3, else 4.",
    ),
    cfg.FloatOpt(
        "burnin_gpus_min_throughput",
        default=0.5,
        min=0.0,
        max=1.0,
        help="Without DCGM: the fraction of the SKU's datasheet FP32 peak (Kiln's catalogue) a GPU's matrix "
        "multiply must reach, or the burn-in fails for that GPU.",
    ),
    cfg.IntOpt(
        "clear_gpu_memory_priority",
        default=0,
        min=0,
        help="Priority of clear_gpu_memory in automated cleaning; 0 leaves it out. It resets every idle "
        "NVIDIA GPU (nvidia-smi --gpu-reset, NVML telling which are in use), so no tenant data stays in GPU "
        "memory; the turnover record says per GPU whether it was cleared, or why not. Give it a priority "
        "below verify_gpus_priority: a reset also applies pending row remaps the gate reports.",
    ),
    cfg.BoolOpt(
        "automated_clean",
        default=True,
        help="Clean nodes automatically on undeploy and on provide; a node's own automated_clean field, "
        "when set, overrides this.",
    ),
    cfg.StrOpt(
        "default_image_checksum_algo",
        default="sha256",
        choices=["sha256", "sha512", "md5"],
        help="Hash algorithm assumed for an instance_info image_checksum that names none and whose "
        "length does not tell it (md5 is refused by agents unless [agent]allow_md5 is set).",
    ),
    cfg.IntOpt(
        "agent_command_timeout",
        default=60,
        min=1,
        help="Seconds the conductor waits for an agent to accept a step over RPC.",
    ),
    cfg.IntOpt(
        "clean_callback_timeout",
        default=1800,
        min=0,
        help="Seconds a node may stay in clean wait without hearing from its agent before cleaning "
        "fails; 0 disables.",
    ),
    cfg.IntOpt(
        "inspect_wait_timeout",
        default=1800,
        min=0,
        help="Seconds a node may stay in inspect wait before inspection fails; 0 disables.",
    ),
    cfg.BoolOpt(
        "power_off_after_deploy_failure",
        default=True,
        help="Power a node off when its deployment or cleaning fails, so it does not keep running "
        "the agent or half an image.",
    ),
]
