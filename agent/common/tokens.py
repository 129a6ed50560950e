"""Agent tokens: how the conductor stores and compares them (only a hash is ever kept)."""

from __future__ import annotations

import hashlib
import hmac


def hash_token(token: str) -> str:
    """The stored form of an agent token: its sha256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(stored_hash: str | None, token_hash: str | None) -> bool:
    """Whether ``token_hash`` is ``stored_hash`` (compared in constant time; empty never matches)."""
    return bool(stored_hash and token_hash) and hmac.compare_digest(stored_hash, token_hash)
