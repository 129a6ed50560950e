"""Database errors; they live in agent.common.exception (so RPC rebuilds them) and are re-exported here."""

from __future__ import annotations

from agent.common.exception import (  # noqa: F401 - re-exports
    AllocationAlreadyExists,
    AllocationDuplicateName,
    AllocationNotFound,
    ConductorNotRegistered,
    InstanceAssociated,
    PortAlreadyExists,
    PortDuplicateName,
)

__all__ = [
    "AllocationAlreadyExists",
    "AllocationDuplicateName",
    "AllocationNotFound",
    "ConductorNotRegistered",
    "InstanceAssociated",
    "PortAlreadyExists",
    "PortDuplicateName",
]
