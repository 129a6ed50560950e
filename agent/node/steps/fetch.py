"""Downloads the agent's steps make over HTTP(S): images (streamed), configdrives and checksum files."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import requests

from agent.node.steps.context import StepContext
from agent.node.steps.errors import StepError


def safe_url(url: str) -> str:
    """The URL without user:password and query string (temp URL signatures), for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def open_stream(ctx: StepContext, url: str, what: str) -> requests.Response:
    """GET ``url`` as a stream with the [agent] image TLS and timeout options; StepError naming ``what``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StepError(f"{what} must be an http(s) URL, got {safe_url(url)!r}")
    opts = ctx.opts
    verify: bool | str = opts.image_ca_file or opts.image_verify_tls
    try:
        resp = requests.get(
            url, stream=True, timeout=(opts.image_connect_timeout, opts.image_read_timeout), verify=verify
        )
    except requests.RequestException as exc:
        raise StepError(f"cannot download the {what} from {safe_url(url)}: {exc}") from exc
    if resp.status_code >= 400:
        resp.close()
        raise StepError(f"the {what} server answered HTTP {resp.status_code} for {safe_url(url)}")
    return resp


def fetch_bytes(ctx: StepContext, url: str, what: str, limit: int) -> bytes:
    """The whole body at ``url``, refused (StepError) as soon as it passes ``limit`` bytes."""
    resp = open_stream(ctx, url, what)
    data = bytearray()
    try:
        for chunk in resp.iter_content(chunk_size=1 << 16):
            data += chunk
            if len(data) > limit:
                raise StepError(f"the {what} at {safe_url(url)} is larger than {limit} B; refused")
    except requests.RequestException as exc:
        raise StepError(f"the {what} download from {safe_url(url)} broke off: {exc}") from exc
    finally:
        resp.close()
    return bytes(data)
