"""kiln-setup: install Kiln on this host as systemd services, in one command.

Run as root from the environment Kiln was pip-installed into (``/opt/kiln/bin/kiln-setup``). It creates
the ``kiln`` system user (sysusers.d), writes /etc/kiln/kiln.conf, creates the first admin credential
(htpasswd for kiln-api's http_basic auth and admin-openrc), migrates the database with kiln-dbsync,
installs the shipped systemd units pointing at this environment, verifies them with
``systemd-analyze verify``, and enables and starts kiln-conductor, kiln-api and kiln-agent.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from agent.install import host, units


def build_parser() -> argparse.ArgumentParser:
    """The command line of kiln-setup."""
    parser = argparse.ArgumentParser(prog="kiln-setup", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        required=True,
        help="postgresql+psycopg2://USER:PASS@HOST/DB or mysql+pymysql://USER:PASS@HOST/DB (existing)",
    )
    parser.add_argument("--transport-url", required=True, help="RabbitMQ: rabbit://USER:PASS@HOST:5672/VHOST")
    parser.add_argument("--admin-user", default="admin", help="The first API administrator (default: admin).")
    parser.add_argument(
        "--admin-password",
        help="Its password (or $KILN_ADMIN_PASSWORD); default: generated. admin-openrc holds it.",
    )
    parser.add_argument(
        "--api-host", default="0.0.0.0", help="Address kiln-api listens on (default: 0.0.0.0)."
    )
    parser.add_argument(
        "--api-port", type=int, default=6385, help="Port kiln-api listens on (default: 6385)."
    )
    parser.add_argument(
        "--set",
        dest="options",
        action="append",
        default=[],
        metavar="SECTION.OPTION=VALUE",
        help="One more kiln.conf option, e.g. --set DEFAULT.debug=true (repeatable).",
    )
    parser.add_argument("--config-dir", type=Path, default=Path("/etc/kiln"), help="Default: /etc/kiln.")
    parser.add_argument("--no-start", action="store_true", help="Enable the services but do not start them.")
    return parser


def _step(text: str) -> None:
    print(f"kiln-setup: {text}", flush=True)


def setup(settings: host.Settings, start: bool = True) -> None:
    """Run every step of the installation in order; SetupError from the first that fails."""
    if os.geteuid() != 0:
        raise host.SetupError("run kiln-setup as root: it creates a system user and systemd units")
    bindir = units.scripts_dir()
    host.check_database_url(settings.database_url)
    host.check_transport_url(settings.transport_url)
    _step(f"creating the {host.SERVICE_USER} system user ({host.SYSUSERS_FILE})")
    host.create_user()
    _step(f"writing {settings.config_file}")
    host.write_config(settings)
    _step(f"admin credential for {settings.admin_user!r}: {settings.htpasswd_file}, {settings.openrc_file}")
    host.write_admin_credential(settings)
    _step("migrating the database: " + host.migrate(bindir, settings))
    written = units.install_units(bindir, settings.config_file)
    _step(f"units written: {', '.join(map(str, written))}")
    units.verify(written)
    _step("systemd-analyze verify: passed")
    units.enable_and_start(start=start)
    _step(("enabled and started: " if start else "enabled: ") + ", ".join(units.SERVICES))
    _step(f"done; the API is at {settings.api_endpoint}: source {settings.openrc_file}; baremetal node list")


def main(argv: list[str] | None = None) -> int:
    """Entry point of kiln-setup; 0 when Kiln is installed and started, 1 when a step failed."""
    args = build_parser().parse_args(argv)
    try:
        settings = host.Settings(
            database_url=args.database_url,
            transport_url=args.transport_url,
            admin_user=args.admin_user,
            api_host=args.api_host,
            api_port=args.api_port,
            options=[host.parse_option(text) for text in args.options],
            config_dir=args.config_dir,
        )
        password = args.admin_password or os.environ.get("KILN_ADMIN_PASSWORD")
        if password:
            settings.admin_password = password
        setup(settings, start=not args.no_start)
    except host.SetupError as exc:
        print(f"kiln-setup: failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
