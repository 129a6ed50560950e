"""Portgroups (Ironic's bonded ports) and the ports' internal_info (where attached VIFs are kept).

Revision ID: 5b2f0c1e9a47
Revises: 12c53a968cd1
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "5b2f0c1e9a47"
down_revision = "12c53a968cd1"
branch_labels = None
depends_on = None


def _timestamp() -> sa.types.TypeEngine:
    """A UTC timestamp column type (microseconds on MySQL), as agent.db.models.UTCDateTime stores it."""
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    op.create_table(
        "portgroups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=18), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("internal_info", sa.JSON(), nullable=True),
        sa.Column("standalone_ports_supported", sa.Boolean(), nullable=False),
        sa.Column("mode", sa.String(length=255), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_portgroups_node_id_nodes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portgroups")),
        sa.UniqueConstraint("address", name=op.f("uniq_portgroups0address")),
        sa.UniqueConstraint("name", name=op.f("uniq_portgroups0name")),
        sa.UniqueConstraint("uuid", name=op.f("uniq_portgroups0uuid")),
    )
    op.create_index(op.f("ix_portgroups_node_id"), "portgroups", ["node_id"], unique=False)
    op.add_column("ports", sa.Column("internal_info", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ports") as batch:
        batch.drop_column("internal_info")
    op.drop_table("portgroups")
