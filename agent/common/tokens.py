"""Agent tokens: node-bound (``<node uuid>.<random>``), checked against a stored sha256 only.

A token names the node it was issued to, so a token presented for another node is refused as
"issued to another node" before any hash is compared, and one of this node's earlier boots as
"stale". The token itself is never logged: the reasons below name the node, not the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

#: Refusal reasons (logged and sent back to the agent; none contains the token).
NO_TOKEN = "the agent sent no token"
OTHER_NODE = "wrong agent token: issued to another node"
STALE = "wrong agent token: stale (not the token of this boot of the node)"
WRONG = "wrong agent token"


def hash_token(token: str) -> str:
    """The stored form of an agent token: its sha256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(stored_hash: str | None, token_hash: str | None) -> bool:
    """Whether ``token_hash`` is ``stored_hash`` (compared in constant time; empty never matches)."""
    return bool(stored_hash and token_hash) and hmac.compare_digest(stored_hash, token_hash)


def new_token(node_uuid: str) -> str:
    """A fresh agent token bound to ``node_uuid``: ``<node uuid>.<43 url-safe random characters>``."""
    return f"{node_uuid.lower()}.{secrets.token_urlsafe(32)}"


def token_node(token: str) -> str | None:
    """The node UUID a node-bound token names; None for an unbound (older) token."""
    head, sep, rest = token.partition(".")
    return head.lower() if sep and rest and len(head) == 36 and head.count("-") == 4 else None


def refusal(node_uuid: str, stored_hash: str | None, token: object) -> str | None:
    """Why ``token`` is not node ``node_uuid``'s current token (one of the reasons above); None if it is."""
    if not isinstance(token, str) or not token:
        return NO_TOKEN
    bound_to = token_node(token)
    if bound_to is not None and bound_to != node_uuid.lower():
        return OTHER_NODE
    if token_matches(stored_hash, hash_token(token)):
        return None
    return STALE if bound_to is not None else WRONG
