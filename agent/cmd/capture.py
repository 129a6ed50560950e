"""kiln-capture-sysfs: copy a host's sysfs/procfs into a fixture tree."""

from __future__ import annotations

import argparse
import sys

from agent.inventory import capture as cap


def main(argv: list[str] | None = None) -> int:
    """Run the capture; exit 0 on success, 2 when the output cannot be written."""
    parser = argparse.ArgumentParser(prog="kiln-capture-sysfs", description=__doc__)
    parser.add_argument("--root", default="/", help="host root to read (default /)")
    parser.add_argument("--output", required=True, help="directory to write the tree into")
    parser.add_argument("--tar", help="also pack the tree into this .tar.gz")
    args = parser.parse_args(argv)
    try:
        result = cap.capture(args.root, args.output)
        if args.tar:
            cap.write_tar(args.output, args.tar)
    except OSError as exc:
        print(
            f"kiln-capture-sysfs: cannot write {exc.filename or args.output}: {exc.strerror}", file=sys.stderr
        )
        return 2
    print(
        f"captured {result.files} files from {result.root} into {result.out}; {len(result.errors)} problems"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
