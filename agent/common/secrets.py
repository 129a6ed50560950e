"""Masking of driver_info secrets (passwords, keys, tokens) in logs and API answers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "******"

# Ironic's rule, widened: *_password, *_key and anything with "token" in its name are secret.
_SECRET_KEY = re.compile(r"(?:password|token|secret|(?:^|_)key$)", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """Whether a driver_info key holds a secret (``*_password``, ``*_key``, ``*token*``, ``*secret*``)."""
    return bool(_SECRET_KEY.search(str(key)))


def mask_driver_info(driver_info: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``driver_info`` with every secret value replaced by "******" (nested dicts too)."""
    if not driver_info:
        return {}
    masked: dict[str, Any] = {}
    for key, value in driver_info.items():
        if is_secret_key(key) and value not in (None, ""):
            masked[key] = MASK
        elif isinstance(value, Mapping):
            masked[key] = mask_driver_info(value)
        else:
            masked[key] = value
    return masked


def secret_values(driver_info: Mapping[str, Any] | None) -> list[str]:
    """The non-empty secret values of ``driver_info``, longest first (for scrubbing free text)."""
    found: list[str] = []
    for key, value in (driver_info or {}).items():
        if isinstance(value, Mapping):
            found.extend(secret_values(value))
        elif is_secret_key(key) and value not in (None, "") and not isinstance(value, bool):
            found.append(str(value))
    return sorted(set(found), key=len, reverse=True)


def mask_text(text: str, driver_info: Mapping[str, Any] | None) -> str:
    """``text`` with every secret value of ``driver_info`` replaced by "******" (e.g. a BMC error)."""
    for value in secret_values(driver_info):
        text = text.replace(value, MASK)
    return text


def unmask_driver_info(new: Mapping[str, Any] | None, stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """``new`` with every secret still reading "******" given back its ``stored`` value.

    A client that patches one key of the masked driver_info it was shown sends the other
    secrets back masked; they must keep the values they had, not become "******".
    """
    result: dict[str, Any] = {}
    stored = stored or {}
    for key, value in (new or {}).items():
        old = stored.get(key)
        if value == MASK and is_secret_key(key) and key in stored:
            result[key] = old
        elif isinstance(value, Mapping) and isinstance(old, Mapping):
            result[key] = unmask_driver_info(value, old)
        else:
            result[key] = value
    return result
