"""Options of the [DEFAULT] group shared by every Kiln service."""

from oslo_config import cfg

GROUP = None

OPTS = [
    cfg.StrOpt(
        "state_path",
        default="/var/lib/kiln",
        help="Top-level directory for Kiln's state: the default SQLite database lives here.",
    ),
]
