"""Portgroups: created with the conductor-wide default bond mode, changed under the node's lock."""

from __future__ import annotations

from agent.common import row_dicts
from agent.common.config import CONF
from agent.db import api as db_api


def create_portgroup(values: dict) -> dict:
    """Create a portgroup; a missing mode becomes [network]default_portgroup_mode, as in Ironic."""
    values = dict(values)
    if not values.get("mode"):
        values["mode"] = CONF.network.default_portgroup_mode
    return row_dicts.portgroup_to_dict(db_api.create_portgroup(values))


def update_portgroup(ident: str, values: dict) -> dict:
    """Change a portgroup's fields; return it."""
    return row_dicts.portgroup_to_dict(db_api.update_portgroup(ident, values))
