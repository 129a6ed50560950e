"""kiln-demo: a conductor, this host's agent and simulated nodes in one process; prints the fleet."""

from __future__ import annotations

import argparse
import sys

from oslo_config import cfg
from oslo_log import log

from agent.demo import trees
from agent.demo.runner import MEMORY_URL, Demo, DemoOptions


def build_parser() -> argparse.ArgumentParser:
    """The command line of kiln-demo."""
    parser = argparse.ArgumentParser(
        prog="kiln-demo",
        description="Run a Kiln conductor, this host's agent and simulated nodes (agents reading the "
        "sysfs fixture trees) in one process, show discovery as it happens, then the fleet.",
    )
    parser.add_argument(
        "--transport-url",
        default=MEMORY_URL,
        help="oslo.messaging transport (default %(default)s, in this process only); e.g. "
        "rabbit://guest:guest@127.0.0.1:5672/ (use a vhost of its own if a real conductor serves there)",
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: SQLite in a temporary directory); e.g. "
        "postgresql+psycopg2://postgres@127.0.0.1/kiln_demo. The demo's nodes are removed at the end "
        "unless --keep.",
    )
    parser.add_argument(
        "--fixtures",
        metavar="DIR",
        help="directory of sysfs trees to simulate (default: tests/fixtures/sysfs of the source checkout)",
    )
    parser.add_argument(
        "--trees",
        help="comma-separated tree names under the fixtures directory "
        f"(default: {','.join(trees.DEFAULT_TREES)})",
    )
    parser.add_argument("--no-host", action="store_true", help="do not run an agent for this host")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for every node")
    parser.add_argument(
        "--no-gate",
        action="store_true",
        help="skip the GPU acceptance gate (automated cleaning of the hgx-h100, mi300x, h200-vm and "
        "storage-sas trees)",
    )
    parser.add_argument("--deploy", action="store_true", help="then deploy one simulated node (issue 5)")
    parser.add_argument("--keep", action="store_true", help="keep the demo's nodes in --database-url")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the services' INFO logs")
    return parser


def options_from(argv: list[str] | None) -> DemoOptions:
    """Parse the command line into DemoOptions."""
    args = build_parser().parse_args(argv)
    return DemoOptions(
        transport_url=args.transport_url,
        database_url=args.database_url,
        fixtures=args.fixtures,
        trees=[t.strip() for t in args.trees.split(",") if t.strip()] if args.trees else None,
        host=not args.no_host,
        timeout=args.timeout,
        deploy=args.deploy,
        gate=not args.no_gate,
        keep=args.keep,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when every node reported, 1 when some did not, 2 when nothing could run."""
    options = options_from(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    # Logging has options of its own, kept apart from the demo's CONF (which its runs parse).
    log_conf = cfg.ConfigOpts()
    log.register_options(log_conf)
    log_conf([], project="kiln-demo", default_config_files=[])
    if not verbose:  # only errors: no library gets a level of its own that lets more through
        log_conf.set_override("default_log_levels", [])
    log.setup(log_conf, "kiln-demo")  # to stderr; the demo's own lines go to stdout
    log.getLogger().logger.setLevel(log.INFO if verbose else log.ERROR)
    try:
        return Demo(options).run()
    except (NotADirectoryError, ValueError) as exc:
        print(f"kiln-demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kiln-demo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
