"""Node-bound agent tokens: issued per node, refused for another node or when stale, never logged."""

from __future__ import annotations

import uuid

import pytest

from agent.common import exception, tokens

NODE_A = str(uuid.uuid4())
NODE_B = str(uuid.uuid4())


def test_new_token_names_its_node_and_is_random() -> None:
    first, second = tokens.new_token(NODE_A), tokens.new_token(NODE_A)
    assert first != second
    assert first.startswith(NODE_A + ".") and len(first) > len(NODE_A) + 40
    assert tokens.token_node(first) == NODE_A
    assert tokens.token_node("plain-old-token") is None


def test_current_token_of_its_node_is_accepted() -> None:
    token = tokens.new_token(NODE_A)
    assert tokens.refusal(NODE_A, tokens.hash_token(token), token) is None
    assert tokens.refusal(NODE_A.upper(), tokens.hash_token(token), token) is None


def test_token_of_node_a_presented_for_node_b_is_issued_to_another_node() -> None:
    token_a = tokens.new_token(NODE_A)
    # Even when B's stored hash were A's token (it is not), the binding refuses it first.
    assert tokens.refusal(NODE_B, tokens.hash_token(token_a), token_a) == tokens.OTHER_NODE


def test_token_of_an_earlier_boot_is_stale() -> None:
    old, current = tokens.new_token(NODE_A), tokens.new_token(NODE_A)
    assert tokens.refusal(NODE_A, tokens.hash_token(current), old) == tokens.STALE
    assert tokens.refusal(NODE_A, None, old) == tokens.STALE  # cleared at power-off


@pytest.mark.parametrize("token", [None, "", 42])
def test_missing_token(token) -> None:
    assert tokens.refusal(NODE_A, tokens.hash_token("x"), token) == tokens.NO_TOKEN


def test_unbound_token_still_matches_by_hash_else_wrong() -> None:
    assert tokens.refusal(NODE_A, tokens.hash_token("legacy"), "legacy") is None
    assert tokens.refusal(NODE_A, tokens.hash_token("legacy"), "other") == tokens.WRONG


def test_refusal_error_names_node_and_reason_not_token() -> None:
    token = tokens.new_token(NODE_A)
    err = exception.InvalidAgentToken(node=NODE_B, reason=tokens.refusal(NODE_B, None, token))
    assert NODE_B in str(err) and "issued to another node" in str(err)
    assert token not in str(err) and token.split(".")[1] not in str(err)
