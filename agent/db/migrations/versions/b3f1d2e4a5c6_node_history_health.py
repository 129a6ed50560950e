"""Node history events (Ironic's node_history) and the node's health (1.109).

Revision ID: b3f1d2e4a5c6
Revises: 4e8b2d7a9c15
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "b3f1d2e4a5c6"
down_revision = "4e8b2d7a9c15"
branch_labels = None
depends_on = None


def _timestamp() -> sa.types.TypeEngine:
    """A UTC timestamp column type (microseconds on MySQL), as agent.db.models.UTCDateTime stores it."""
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    """Create node_history and add nodes.health."""
    op.create_table(
        "node_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("conductor", sa.String(length=255), nullable=True),
        sa.Column("event_type", sa.String(length=255), nullable=True),
        sa.Column("severity", sa.String(length=255), nullable=True),
        sa.Column("event", sa.Text(), nullable=True),
        sa.Column("user", sa.String(length=64), nullable=True),
        sa.Column("project", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=True),
        sa.Column("target_provision_state", sa.String(length=32), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_node_history_node_id_nodes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_history")),
        sa.UniqueConstraint("uuid", name=op.f("uniq_node_history0uuid")),
    )
    op.create_index(op.f("ix_node_history_node_id"), "node_history", ["node_id"])
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("health", sa.String(length=255), nullable=True))


def downgrade() -> None:
    """Drop nodes.health and node_history."""
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("health")
    # Its index goes with the table (MySQL refuses to drop an index its foreign key needs first).
    op.drop_table("node_history")
