"""kiln-dbsync: create or upgrade Kiln's database schema, show its version, or write a new migration."""

from __future__ import annotations

import sys

from oslo_config import cfg
from sqlalchemy.exc import SQLAlchemyError

from agent.common import config, exception


def _add_commands(subparsers) -> None:
    up = subparsers.add_parser("upgrade", help="Create the schema, or upgrade it to the newest revision.")
    up.add_argument("--revision", default="head", help="Revision to upgrade to (default: head).")
    subparsers.add_parser("version", help="Print the revision the database is at ('None' when empty).")
    rev = subparsers.add_parser("revision", help="Write a new migration script (developers).")
    rev.add_argument("-m", "--message", required=True, help="What the migration does.")
    rev.add_argument("--autogenerate", action="store_true", help="Fill it from the models/database diff.")


CLI_OPTS = [
    cfg.StrOpt("database-url", help="Database URL; overrides [database]connection."),
    cfg.SubCommandOpt("command", title="Commands", handler=_add_commands),
]


def _conf(argv: list[str] | None) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    config.register_opts(conf)
    conf.register_cli_opts(CLI_OPTS)
    conf(argv if argv is not None else sys.argv[1:], project="kiln", prog="kiln-dbsync")
    return conf


def run(conf: cfg.ConfigOpts) -> int:
    """Run the parsed command; return the exit status."""
    from agent.db import api, migration

    api.configure(conf.database_url or conf.database.connection)
    try:
        name = conf.command.name
        if name == "upgrade":
            before = migration.version()
            migration.upgrade(conf.command.revision)
            after = migration.version()
            note = "unchanged" if before == after else f"was {before}"
            print(f"Database at revision {after} ({note}).")
        elif name == "version":
            print(migration.version())
        elif name == "revision":
            migration.revision(conf.command.message, autogenerate=conf.command.autogenerate)
    finally:
        api.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of kiln-dbsync; 0 on success, 1 when the database refused, 2 on bad arguments."""
    try:
        conf = _conf(argv)
    except (cfg.Error, ValueError) as exc:
        print(f"kiln-dbsync: {exc}", file=sys.stderr)
        return 2
    try:
        return run(conf)
    except exception.KilnException as exc:
        print(f"kiln-dbsync: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"kiln-dbsync: database error on {conf.command.name}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
