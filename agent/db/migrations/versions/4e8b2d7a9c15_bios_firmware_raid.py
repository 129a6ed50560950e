"""BIOS settings and firmware components per node; nodes' raid_config and target_raid_config.

Revision ID: 4e8b2d7a9c15
Revises: 7c3d9e2a1f60
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "4e8b2d7a9c15"
down_revision = "7c3d9e2a1f60"
branch_labels = None
depends_on = None


def _timestamp() -> sa.types.TypeEngine:
    """A UTC timestamp column type (microseconds on MySQL), as agent.db.models.UTCDateTime stores it."""
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def _node_key(table: str) -> list:
    return [
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f(f"fk_{table}_node_id_nodes"), ondelete="CASCADE"
        ),
    ]


#: Before this revision Kiln stored bios/raid/firmware_interface without using them; names it has no
#: implementation of are reset so the node gets its hardware type's default instead of failing.
_KNOWN = {
    "bios_interface": ("no-bios", "redfish"),
    "raid_interface": ("agent", "no-raid", "redfish"),
    "firmware_interface": ("no-firmware", "redfish"),
}


def upgrade() -> None:
    nodes = sa.table("nodes", *(sa.column(name, sa.String) for name in _KNOWN))
    for column, names in _KNOWN.items():
        op.execute(nodes.update().where(nodes.c[column].not_in(names)).values({column: None}))
    op.create_table(
        "bios_settings",
        *_node_key("bios_settings"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("attribute_type", sa.String(length=255), nullable=True),
        sa.Column("allowable_values", sa.JSON(), nullable=True),
        sa.Column("lower_bound", sa.Integer(), nullable=True),
        sa.Column("max_length", sa.Integer(), nullable=True),
        sa.Column("min_length", sa.Integer(), nullable=True),
        sa.Column("read_only", sa.Boolean(), nullable=True),
        sa.Column("reset_required", sa.Boolean(), nullable=True),
        sa.Column("unique", sa.Boolean(), nullable=True),
        sa.Column("upper_bound", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("node_id", "name", name=op.f("pk_bios_settings")),
    )
    op.create_table(
        "firmware_information",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *_node_key("firmware_information"),
        sa.Column("component", sa.String(length=255), nullable=False),
        sa.Column("initial_version", sa.String(length=255), nullable=False),
        sa.Column("current_version", sa.String(length=255), nullable=True),
        sa.Column("last_version_flashed", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_information")),
        sa.UniqueConstraint("node_id", "component", name=op.f("uniq_firmware_information0node_id_component")),
    )
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("raid_config", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("target_raid_config", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("target_raid_config")
        batch.drop_column("raid_config")
    op.drop_table("firmware_information")
    op.drop_table("bios_settings")
