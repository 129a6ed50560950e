"""Small helpers every part of Kiln shares: the time, an exception's text, RPC-visible errors."""

from __future__ import annotations

import datetime
import inspect
from collections.abc import Iterable
from urllib.parse import urlsplit

import oslo_messaging as messaging

from agent.common import exception


def utcnow() -> datetime.datetime:
    """The current time, timezone-aware in UTC (what every stored timestamp is)."""
    return datetime.datetime.now(datetime.UTC)


def error_text(exc: BaseException) -> str:
    """An exception's message, or its class name when it has none (never an empty string)."""
    return str(exc) or type(exc).__name__


def expect_kiln_errors(cls: type, names: Iterable[str] | None = None) -> type:
    """Let Kiln's own errors from an RPC endpoint's methods reach the caller with no server traceback.

    ``names`` picks the methods; without it, every public method defined by the class itself is marked.
    """
    if names is None:
        names = [n for n, v in vars(cls).items() if inspect.isfunction(v) and not n.startswith("_")]
    for name in names:
        setattr(cls, name, messaging.expected_exceptions(exception.KilnException)(getattr(cls, name)))
    return cls


def is_http_url(value: object) -> bool:
    """Whether ``value`` is an http(s) URL with a host (a configdrive or checksum file to download)."""
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
