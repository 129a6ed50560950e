"""The node UUID and one-time agent token, kept in a 0600 file so a restarted agent can reuse them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from oslo_log import log as logging

LOG = logging.getLogger(__name__)
TOKEN_FILE = "agent-token.json"


@dataclass(frozen=True)
class Credentials:
    """What the conductor handed the agent at lookup."""

    node_uuid: str
    agent_token: str


class TokenStore:
    """Reads and writes ``<state_dir>/agent-token.json`` (directory 0700, file 0600)."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, TOKEN_FILE)

    def save(self, creds: Credentials) -> None:
        """Write the credentials atomically, readable by the owner only."""
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)  # the umask or an older file may have left other bits
            with os.fdopen(fd, "w") as f:
                json.dump({"node_uuid": creds.node_uuid, "agent_token": creds.agent_token}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def load(self) -> Credentials | None:
        """Return the stored credentials, or None when absent or unusable (the reason is logged)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            LOG.warning("Ignoring agent token file %s: %s", self.path, exc)
            return None
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) and data.get(k) for k in ("node_uuid", "agent_token")
        ):
            LOG.warning("Ignoring agent token file %s: it lacks node_uuid or agent_token", self.path)
            return None
        mode = os.stat(self.path).st_mode & 0o777
        if mode & 0o077:
            LOG.warning("Agent token file %s has mode %o; others can read the token", self.path, mode)
        return Credentials(data["node_uuid"], data["agent_token"])

    def clear(self) -> None:
        """Forget the stored credentials (the conductor rejected the token)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
