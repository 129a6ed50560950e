"""Options of turnover evidence: the signed record every cleaning leaves of what it erased."""

from oslo_config import cfg

GROUP = "turnover"

OPTS = [
    cfg.StrOpt(
        "signing_key_file",
        help="PEM file of the conductor's ed25519 private key that signs turnover records. Unset: "
        "$state_path/turnover-ed25519.pem, made (mode 0600) on first use, with its public key "
        "beside it (.pub) for kiln-verify-certificate. Conductors sharing a database should share "
        "one key.",
    ),
    cfg.StrOpt(
        "public_key_file",
        help="PEM file of the public key kiln-api checks turnover records against on the fleet page. "
        "Unset: the .pub file beside signing_key_file (as the conductor writes it), which is there "
        "when kiln-api runs on the conductor's host; elsewhere copy it over and point this at it.",
    ),
]
