"""Turnover records: the signed evidence each cleaning leaves (no foreign key: it outlives the node).

Revision ID: 7c3d9e2a1f60
Revises: 9a4c6e2d1f03
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "7c3d9e2a1f60"
down_revision = "9a4c6e2d1f03"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "turnover_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("node_uuid", sa.String(length=36), nullable=False),
        sa.Column("record", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql"), nullable=False),
        sa.Column("signature", sa.String(length=255), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql"), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_turnover_records")),
        sa.UniqueConstraint("uuid", name=op.f("uniq_turnover_records0uuid")),
    )
    op.create_index(op.f("ix_turnover_records_node_uuid"), "turnover_records", ["node_uuid"])


def downgrade() -> None:
    op.drop_index(op.f("ix_turnover_records_node_uuid"), table_name="turnover_records")
    op.drop_table("turnover_records")
