"""Options of the dnsmasq files the boot interfaces write (dhcp-hostsdir, dhcp-optsdir)."""

from oslo_config import cfg

GROUP = "dnsmasq"

OPTS = [
    cfg.StrOpt(
        "hostsdir",
        default="$state_path/dnsmasq/hostsdir",
        help="dnsmasq's dhcp-hostsdir: one file per PXE-enabled port tags its MAC with its node.",
    ),
    cfg.StrOpt(
        "optsdir",
        default="$state_path/dnsmasq/optsdir",
        help="dnsmasq's dhcp-optsdir: one file per node with its tagged boot options.",
    ),
    cfg.StrOpt(
        "pid_file",
        help="dnsmasq's pid file. Not signalled by the boot interfaces: dnsmasq 2.90 crashes on "
        "SIGHUP after answering a MAC whose host line sets tags, so a leaving MAC's host file is "
        "rewritten to '<mac>,ignore' instead, which dnsmasq picks up by itself.",
    ),
    cfg.IntOpt(
        "tombstone_ttl",
        default=86400,
        min=0,
        help="Seconds a left port's '<mac>,ignore' host file is kept before the conductor prunes it "
        "(dnsmasq has read it by then); 0 keeps tombstones forever.",
    ),
    cfg.BoolOpt(
        "ignore_unknown",
        default=True,
        help="Rendered dnsmasq configs answer only MACs with a host file (dhcp-ignore=tag:!known).",
    ),
]
