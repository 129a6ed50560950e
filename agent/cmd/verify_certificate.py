"""kiln-verify-certificate: check a turnover record offline against the conductor's public key.

    kiln-verify-certificate RECORD.json --public-key turnover-ed25519.pem.pub

RECORD.json is one record as kiln-api serves it (GET /v1/nodes/{node}/kiln/turnover/{record}).
Exit 0 and a summary when the signature holds; 1 naming what does not; 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.common import evidence


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(prog="kiln-verify-certificate", description=__doc__.splitlines()[0])
    p.add_argument("record", help="a turnover record as kiln-api serves it (JSON)")
    p.add_argument("--public-key", required=True, help="the conductor's ed25519 public key (PEM)")
    return p


def _load(args: argparse.Namespace) -> tuple[dict, ed25519.Ed25519PublicKey]:
    try:
        with open(args.record, encoding="utf-8") as fh:
            document = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"kiln-verify-certificate: cannot read the record {args.record}: {exc}") from None
    if not isinstance(document, dict):
        raise SystemExit(f"kiln-verify-certificate: {args.record} holds no JSON object")
    try:
        with open(args.public_key, "rb") as fh:
            public = serialization.load_pem_public_key(fh.read())
    except (OSError, ValueError) as exc:
        where = args.public_key
        raise SystemExit(f"kiln-verify-certificate: cannot read the public key {where}: {exc}") from None
    if not isinstance(public, ed25519.Ed25519PublicKey):
        raise SystemExit(f"kiln-verify-certificate: {args.public_key} is not an ed25519 public key")
    return document, public


def main(argv: list[str] | None = None) -> int:
    """Verify the record; print its summary (0) or what failed (1)."""
    args = build_parser().parse_args(argv)
    try:
        document, public = _load(args)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        record = evidence.verify(document, public)
    except evidence.VerifyError as exc:
        print(f"INVALID: {args.record}: {exc}", file=sys.stderr)
        return 1
    lines = evidence.summary(record)
    print(f"valid: {lines[0]}")
    print("\n".join(lines[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
