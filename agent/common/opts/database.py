"""Options of the database: where the conductor keeps the fleet."""

from oslo_config import cfg

GROUP = "database"

OPTS = [
    cfg.StrOpt(
        "connection",
        default="sqlite:///$state_path/kiln.sqlite",
        secret=True,
        help=(
            "SQLAlchemy URL of the database: sqlite:///PATH (default, a file under state_path), "
            "postgresql+psycopg2://USER:PASS@HOST/DB or mysql+pymysql://USER:PASS@HOST/DB."
        ),
    ),
    cfg.IntOpt(
        "sqlite_busy_timeout",
        default=30,
        min=0,
        help="Seconds a SQLite writer waits for another process's lock before giving up.",
    ),
    cfg.FloatOpt(
        "sqlite_checkpoint_interval",
        default=1.0,
        min=0,
        help="Seconds between the background checkpoints of a SQLite database's write-ahead log. "
        "A thread of each Kiln process copies the log into the database file (a passive checkpoint: "
        "it never waits for readers or writers), so no request pays for it when it commits. "
        "0: SQLite checkpoints on commit, every 1000 pages, as it does by default.",
    ),
    cfg.IntOpt("pool_size", default=5, min=1, help="Connections kept open per process (not SQLite)."),
    cfg.IntOpt(
        "pool_recycle",
        default=3600,
        min=-1,
        help="Seconds after which a pooled connection is replaced (MySQL drops idle ones); -1 never.",
    ),
]
