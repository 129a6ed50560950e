"""A node's cached BIOS settings (Ironic's bios_settings): replaced as a whole each time the BMC is read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from agent.common import exception
from agent.db import engine as db_engine
from agent.db.models import BIOSSetting

#: The registry facts a setting may carry beside its name and value (Ironic 1.74).
REGISTRY_FIELDS = (
    "attribute_type",
    "allowable_values",
    "lower_bound",
    "max_length",
    "min_length",
    "read_only",
    "reset_required",
    "unique",
    "upper_bound",
)


def replace_bios_settings(node_id: int, settings: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Make ``settings`` ({"name", "value", registry fields...}) the node's; return the names changed.

    Rows whose value and registry facts are unchanged keep their created_at and updated_at.
    """
    wanted = {s["name"]: s for s in settings}
    changes: dict[str, list[str]] = {"created": [], "updated": [], "deleted": []}
    with db_engine.session(write=True) as sess:
        rows = {r.name: r for r in sess.scalars(select(BIOSSetting).where(BIOSSetting.node_id == node_id))}
        for name, row in rows.items():
            if name not in wanted:
                sess.delete(row)
                changes["deleted"].append(name)
        for name, setting in wanted.items():
            values = {"value": _text(setting.get("value"))}
            values.update({k: setting.get(k) for k in REGISTRY_FIELDS})
            row = rows.get(name)
            if row is None:
                sess.add(BIOSSetting(node_id=node_id, name=name, **values))
                changes["created"].append(name)
            elif any(getattr(row, k) != v for k, v in values.items()):
                for key, value in values.items():
                    setattr(row, key, value)
                changes["updated"].append(name)
    return changes


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def list_bios_settings(node_id: int) -> list[BIOSSetting]:
    """The node's settings, by name."""
    query = select(BIOSSetting).where(BIOSSetting.node_id == node_id).order_by(BIOSSetting.name)
    with db_engine.session() as sess:
        return list(sess.scalars(query))


def get_bios_setting(node_id: int, node_uuid: str, name: str) -> BIOSSetting:
    """One setting of the node; BIOSSettingNotFound naming the node and the setting otherwise."""
    query = select(BIOSSetting).where(BIOSSetting.node_id == node_id, BIOSSetting.name == name)
    with db_engine.session() as sess:
        row = sess.scalars(query).one_or_none()
    if row is None:
        raise exception.BIOSSettingNotFound(node=node_uuid, name=name)
    return row


def delete_bios_settings(node_id: int) -> None:
    """Forget the node's settings (its bios interface cannot read them)."""
    with db_engine.session(write=True) as sess:
        sess.execute(delete(BIOSSetting).where(BIOSSetting.node_id == node_id))
