"""Image checksums: the one rule for the forms instance_info and the agent's write_image accept.

A checksum is ``image_os_hash_algo`` + ``image_os_hash_value``, or the legacy ``image_checksum``:
"<algo>:<hex>", a bare hex digest whose length names the algorithm, or the http(s) URL of a
checksum file (``sha256sum`` / ``sha512sum`` output, GNU or BSD style) that names the image.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import urlsplit

ALGOS = ("sha256", "sha512", "md5")
HEX_LENGTHS = {32: "md5", 64: "sha256", 128: "sha512"}
_HEX = re.compile(r"^[0-9a-f]+$")
_GNU_LINE = re.compile(r"^([0-9a-fA-F]{32,128})\s+\*?(.+?)\s*$")
_BSD_LINE = re.compile(r"^(\w+)\s*\((.+)\)\s*=\s*([0-9a-fA-F]{32,128})\s*$")


class ChecksumError(ValueError):
    """A checksum that is not of an accepted form; the message says what is wrong."""


def parse_checksum(
    algo: str | None, value: str | None, legacy: str | None, default_algo: str | None = None
) -> tuple[str, str]:
    """(algorithm, lower-case hex digest) from the hash algo/value pair, else the legacy form.

    A bare legacy digest takes its algorithm from its length, else ``default_algo``.
    """
    if not value:
        if not legacy:
            raise ChecksumError("needs image_os_hash_value (with image_os_hash_algo) or image_checksum")
        legacy = str(legacy).strip()
        if "://" in legacy:
            raise ChecksumError(f"{legacy!r} is not an http(s) URL of a checksum file")
        name, sep, digest = legacy.partition(":")
        if sep:
            algo, value = name, digest
        else:
            value = legacy
            algo = algo or HEX_LENGTHS.get(len(legacy)) or default_algo
            if not algo:
                raise ChecksumError(
                    f"unsupported image checksum {legacy!r}: not a hex digest of a known length "
                    "(md5 32, sha256 64, sha512 128 hex digits)"
                )
    algo = str(algo or default_algo or "").strip().lower()
    value = str(value).strip().lower()
    if algo not in ALGOS:
        raise ChecksumError(f'unsupported image checksum algorithm "{algo}"; use one of {", ".join(ALGOS)}')
    want = next(n for n, a in HEX_LENGTHS.items() if a == algo)
    if len(value) != want or not _HEX.match(value):
        raise ChecksumError(f"image checksum {value!r} is not a {algo} hex digest ({want} hex digits)")
    return algo, value


def from_checksum_file(text: str, image_url: str) -> str:
    """The digest a checksum file gives for the image at ``image_url`` (matched by file name).

    A file of one bare digest is taken as is; otherwise the line naming the image's file decides.
    """
    name = posixpath.basename(urlsplit(image_url).path)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(lines) == 1 and " " not in lines[0] and "\t" not in lines[0]:
        return lines[0]
    for line in lines:
        gnu = _GNU_LINE.match(line)
        if gnu and posixpath.basename(gnu.group(2).lstrip("./")) == name:
            return gnu.group(1)
        bsd = _BSD_LINE.match(line)
        if bsd and posixpath.basename(bsd.group(2)) == name:
            return bsd.group(3)
    raise ChecksumError(f"the checksum file has no line for {name!r} ({len(lines)} lines read)")
