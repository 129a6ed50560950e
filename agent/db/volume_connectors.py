"""Volume connectors: a node's storage initiator identities (unique per type and connector_id)."""

from __future__ import annotations

from agent.common import exception
from agent.db.models import VolumeConnector
from agent.db.records import Store

STORE = Store(
    VolumeConnector,
    "volume connector",
    "volume_connectors",
    lambda ident: exception.VolumeConnectorNotFound(connector=ident),
    unique=("uuid", "type"),
)
