"""Chassis (and nodes.chassis_id), volume connectors and targets, deploy templates.

Revision ID: 7d3e9a41c2b8
Revises: 5b2f0c1e9a47
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "7d3e9a41c2b8"
down_revision = "5b2f0c1e9a47"
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
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("uuid", name=op.f(f"uniq_{table}0uuid")),
    ]


def _node_fk(table: str) -> list:
    return [
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f(f"fk_{table}_node_id_nodes"), ondelete="CASCADE"
        ),
    ]


def upgrade() -> None:
    op.create_table("chassis", *_common("chassis"), sa.Column("description", sa.String(length=255)))
    op.create_table(
        "volume_connectors",
        *_common("volume_connectors"),
        *_node_fk("volume_connectors"),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("connector_id", sa.String(length=255), nullable=False),
        sa.UniqueConstraint("type", "connector_id", name=op.f("uniq_volume_connectors0type0connector_id")),
    )
    op.create_index(op.f("ix_volume_connectors_node_id"), "volume_connectors", ["node_id"])
    op.create_table(
        "volume_targets",
        *_common("volume_targets"),
        *_node_fk("volume_targets"),
        sa.Column("volume_type", sa.String(length=64), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=True),
        sa.Column("boot_index", sa.Integer(), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.UniqueConstraint("node_id", "boot_index", name=op.f("uniq_volume_targets0node_id0boot_index")),
    )
    op.create_index(op.f("ix_volume_targets_node_id"), "volume_targets", ["node_id"])
    op.create_table(
        "deploy_templates",
        *_common("deploy_templates"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=True),
        sa.UniqueConstraint("name", name=op.f("uniq_deploy_templates0name")),
    )
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("chassis_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_nodes_chassis_id_chassis"), "chassis", ["chassis_id"], ["id"])
        batch.create_index(op.f("ix_nodes_chassis_id"), ["chassis_id"])


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_index(op.f("ix_nodes_chassis_id"))
        batch.drop_constraint(op.f("fk_nodes_chassis_id_chassis"), type_="foreignkey")
        batch.drop_column("chassis_id")
    op.drop_table("deploy_templates")
    op.drop_table("volume_targets")
    op.drop_table("volume_connectors")
    op.drop_table("chassis")
