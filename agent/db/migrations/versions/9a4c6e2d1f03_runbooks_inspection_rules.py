"""Runbooks, inspection rules; nodes' instance_name, shard and firmware_interface.

Revision ID: 9a4c6e2d1f03
Revises: 7d3e9a41c2b8
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "9a4c6e2d1f03"
down_revision = "7d3e9a41c2b8"
branch_labels = None
depends_on = None


def _timestamp() -> sa.types.TypeEngine:
    """A UTC timestamp column type (microseconds on MySQL), as agent.db.models.UTCDateTime stores it."""
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def _common(table: str) -> list:
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("uuid", name=op.f(f"uniq_{table}0uuid")),
    ]


def upgrade() -> None:
    op.create_table(
        "runbooks",
        *_common("runbooks"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=True),
        sa.Column("traits", sa.JSON(), nullable=True),
        sa.Column("disable_ramdisk", sa.Boolean(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.UniqueConstraint("name", name=op.f("uniq_runbooks0name")),
    )
    op.create_table(
        "inspection_rules",
        *_common("inspection_rules"),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=True),
        sa.Column("actions", sa.JSON(), nullable=True),
    )
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("instance_name", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("shard", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("firmware_interface", sa.String(length=255), nullable=True))
        batch.create_index(op.f("ix_nodes_instance_name"), ["instance_name"])
        batch.create_index(op.f("ix_nodes_shard"), ["shard"])


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_index(op.f("ix_nodes_shard"))
        batch.drop_index(op.f("ix_nodes_instance_name"))
        batch.drop_column("firmware_interface")
        batch.drop_column("shard")
        batch.drop_column("instance_name")
    op.drop_table("inspection_rules")
    op.drop_table("runbooks")
