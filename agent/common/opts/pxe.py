"""Options of the pxe and ipxe boot interfaces: where boot files go and what the ramdisk gets."""

from oslo_config import cfg

GROUP = "pxe"

OPTS = [
    cfg.StrOpt(
        "tftp_root",
        default="$state_path/tftpboot",
        help="Directory dnsmasq serves over TFTP: firmware boot files and PXELINUX/GRUB configs.",
    ),
    cfg.StrOpt(
        "http_root",
        default="$state_path/httpboot",
        help="Directory an HTTP server publishes as [pxe]http_url: the per-node iPXE scripts.",
    ),
    cfg.URIOpt(
        "http_url",
        default="http://127.0.0.1:8088",
        schemes=["http", "https"],
        help="URL at which nodes reach [pxe]http_root (http://<host>:<port>, no trailing path needed).",
    ),
    cfg.StrOpt(
        "tftp_server",
        help="IPv4 address handed to PXE firmware as next-server; unset: dnsmasq's own address.",
    ),
    cfg.StrOpt(
        "tftp_server_v6",
        help="IPv6 address of the TFTP server for DHCPv6 boot-file URLs; unset: no IPv6 boot options.",
    ),
    cfg.StrOpt(
        "deploy_kernel", help="URL of the agent ramdisk's kernel for nodes whose driver_info names none."
    ),
    cfg.StrOpt(
        "deploy_ramdisk", help="URL of the agent ramdisk's initramfs for nodes whose driver_info names none."
    ),
    cfg.StrOpt(
        "kernel_append_params",
        default="nofb nomodeset console=tty0 console=ttyS0,115200n8",
        help="Kernel command line for the agent ramdisk, before the parameters Kiln adds.",
    ),
    cfg.URIOpt(
        "agent_config_url",
        help="URL the agent fetches its configuration (transport URL) from; put on the kernel command line "
        "as kiln.config_url. Preferred over kernel_transport_url: nothing secret on the command line.",
    ),
    cfg.StrOpt(
        "kernel_transport_url",
        secret=True,
        help="Transport URL put on the agent's kernel command line as kiln.transport_url when "
        "[pxe]agent_config_url is unset. Give the agents their own, low-privilege broker account.",
    ),
    cfg.StrOpt(
        "default_boot_mode",
        default="uefi",
        choices=["uefi", "bios"],
        help="Boot mode of nodes that state none (properties capabilities boot_mode, instance_info).",
    ),
    cfg.StrOpt("ipxe_bootfile_bios", default="undionly.kpxe", help="iPXE build sent to BIOS PXE firmware."),
    cfg.StrOpt("ipxe_bootfile_uefi", default="snponly.efi", help="iPXE build sent to UEFI PXE firmware."),
    cfg.StrOpt(
        "ipxe_firmware_dir",
        default="/usr/lib/ipxe",
        help="Where the iPXE builds are installed (Debian's ipxe package); copied into [pxe]tftp_root.",
    ),
    cfg.StrOpt(
        "pxe_bootfile_bios", default="pxelinux.0", help="Boot loader sent to BIOS PXE firmware (pxe)."
    ),
    cfg.StrOpt(
        "pxe_bootfile_uefi", default="grubx64.efi", help="Boot loader sent to UEFI PXE firmware (pxe)."
    ),
    cfg.IntOpt(
        "ipxe_fetch_timeout",
        default=60,
        min=1,
        help="Seconds iPXE waits for the kernel or ramdisk download before retrying.",
    ),
    cfg.BoolOpt(
        "enable_netboot_fallback",
        default=False,
        help="Keep a network-boot config for deployed nodes that boots them from their local disk "
        "(PXELINUX localboot, GRUB and iPXE exit to the next boot device), for BMCs that cannot set "
        "a persistent boot device. A conductor taking over a node rewrites it in its own state path.",
    ),
]
