"""kiln-ramdisk: build the deploy ramdisk (kernel + initramfs) that runs kiln-agent."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.ramdisk import builder

MIB = 1024 * 1024


def add_build_command(parser: argparse.ArgumentParser, help: str, what: str) -> None:  # noqa: A002
    """The ``build`` subcommand with the options kiln-ramdisk and kiln-image share."""
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help=help)
    b.add_argument("--output", required=True, type=Path, help=f"directory to put {what} in")
    b.add_argument("--cache-dir", type=Path, help="build cache (default $KILN_CACHE or ~/.cache/kiln)")
    b.add_argument("--mirror", help="Debian mirror for mmdebstrap (default: apt's configured one)")
    b.add_argument("--force", action="store_true", help="rebuild even when the cache has it")


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(prog="kiln-ramdisk", description="Build Kiln's deploy ramdisk from Debian.")
    add_build_command(
        p, "build kiln-agent.kernel and kiln-agent.initramfs into --output", "the kernel and initramfs"
    )
    return p


def run_build(prog: str, args: argparse.Namespace, build, error: type[Exception], report) -> int:
    """Build with ``build(output, cache_dir, mirror, force)``; print ``report(result)`` lines and the timing.

    0 on success; 1, naming the failed step, when ``build`` raises ``error``.
    """
    try:
        result = build(args.output, args.cache_dir, args.mirror, args.force)
    except error as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    for line in report(result):
        print(line)
    how = "from the cache" if result.cached else "built"
    print(f"{how} in {result.seconds:.1f} s (cache key {result.key})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 1 when the build failed (the message names the step)."""
    return run_build(
        "kiln-ramdisk",
        build_parser().parse_args(argv),
        builder.build,
        builder.BuildError,
        lambda result: [
            f"kernel:    {result.kernel} ({result.kernel.stat().st_size / MIB:.1f} MiB)",
            f"initramfs: {result.initramfs} ({result.initramfs_bytes / MIB:.1f} MiB zstd)",
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
