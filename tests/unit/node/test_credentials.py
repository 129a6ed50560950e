"""The agent token file: owner-only permissions, atomic replace, tolerant load."""

from __future__ import annotations

import os
import stat

from agent.node.credentials import Credentials, TokenStore


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_saved_token_is_owner_only_and_round_trips(tmp_path):
    store = TokenStore(str(tmp_path / "state"))
    old_umask = os.umask(0)  # even a permissive umask must not widen the file
    try:
        store.save(Credentials("9a5b2c00-node", "s3cret"))
    finally:
        os.umask(old_umask)
    assert _mode(store.path) == 0o600
    assert _mode(str(tmp_path / "state")) == 0o700
    assert store.load() == Credentials("9a5b2c00-node", "s3cret")
    assert os.listdir(tmp_path / "state") == ["agent-token.json"]  # no temporary file left


def test_a_world_readable_file_is_replaced_by_a_0600_one(tmp_path):
    store = TokenStore(str(tmp_path))
    with open(store.path, "w") as f:
        f.write('{"node_uuid": "old", "agent_token": "old"}')
    os.chmod(store.path, 0o644)
    store.save(Credentials("new-node", "new-token"))
    assert _mode(store.path) == 0o600
    assert store.load() == Credentials("new-node", "new-token")


def test_missing_or_garbled_files_load_as_none(tmp_path):
    store = TokenStore(str(tmp_path))
    assert store.load() is None
    for content in ("not json", "[1, 2]", '{"node_uuid": "x"}', '{"node_uuid": "", "agent_token": "t"}'):
        with open(store.path, "w") as f:
            f.write(content)
        assert store.load() is None, content


def test_clear_forgets_the_token(tmp_path):
    store = TokenStore(str(tmp_path))
    store.save(Credentials("n", "t"))
    store.clear()
    store.clear()  # twice is fine
    assert not os.path.exists(store.path)
    assert store.load() is None
