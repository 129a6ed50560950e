"""A node's firmware components (Ironic's firmware_information): bios, bmc, ... and their versions."""

from __future__ import annotations

from sqlalchemy import select

from agent.db import engine as db_engine
from agent.db.models import FirmwareComponent


def record_firmware_versions(node_id: int, versions: dict[str, str], flashed: tuple[str, ...] = ()) -> None:
    """Store each component's current version; the first one seen is its initial_version.

    Components named in ``flashed`` were just updated: their new version is also last_version_flashed.
    """
    with db_engine.session(write=True) as sess:
        query = select(FirmwareComponent).where(FirmwareComponent.node_id == node_id)
        rows = {r.component: r for r in sess.scalars(query)}
        for component, version in versions.items():
            row = rows.get(component)
            if row is None:
                row = FirmwareComponent(node_id=node_id, component=component, initial_version=version)
                sess.add(row)
            if row.current_version != version:
                row.current_version = version
            if component in flashed:
                row.last_version_flashed = version


def list_firmware_components(node_id: int) -> list[FirmwareComponent]:
    """The node's components, by name."""
    query = (
        select(FirmwareComponent)
        .where(FirmwareComponent.node_id == node_id)
        .order_by(FirmwareComponent.component)
    )
    with db_engine.session() as sess:
        return list(sess.scalars(query))
