"""kiln-image: build the test OS image (whole-disk qcow2, GRUB BIOS+UEFI, cloud-init ConfigDrive)."""

from __future__ import annotations

import argparse
import sys

from agent.cmd import ramdisk
from agent.image import builder

MIB = 1024 * 1024


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(prog="kiln-image", description="Build Kiln's test OS image from Debian.")
    ramdisk.add_build_command(p, f"build {builder.IMAGE} and its .sha256 file into --output", "the image")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 1 when the build failed (the message names the step)."""
    return ramdisk.run_build(
        "kiln-image",
        build_parser().parse_args(argv),
        builder.build,
        builder.BuildError,
        lambda result: [
            f"image:  {result.image} ({result.size / MIB:.1f} MiB qcow2)",
            f"sha256: {result.sha256} (also in {result.image.name}.sha256)",
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
