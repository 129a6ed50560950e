"""Volume targets: remote volumes a node uses (unique per node and boot_index)."""

from __future__ import annotations

from agent.common import exception
from agent.db.models import VolumeTarget
from agent.db.records import Store

STORE = Store(
    VolumeTarget,
    "volume target",
    "volume_targets",
    lambda ident: exception.VolumeTargetNotFound(target=ident),
    unique=("uuid", "node_id"),
)
