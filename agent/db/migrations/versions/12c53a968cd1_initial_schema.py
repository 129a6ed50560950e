"""Initial schema: nodes, traits, ports, inventories, conductors and allocations.

Revision ID: 12c53a968cd1
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "12c53a968cd1"
down_revision = None
branch_labels = None
depends_on = None


def _timestamp() -> sa.types.TypeEngine:
    """A UTC timestamp column type (microseconds on MySQL), as agent.db.models.UTCDateTime stores it."""
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    op.create_table(
        "conductors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("drivers", sa.JSON(), nullable=True),
        sa.Column("conductor_group", sa.String(length=255), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conductors")),
        sa.UniqueConstraint("hostname", name=op.f("uniq_conductors0hostname")),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("system_uuid", sa.String(length=36), nullable=True),
        sa.Column("driver", sa.String(length=255), nullable=False),
        sa.Column("bios_interface", sa.String(length=255), nullable=True),
        sa.Column("boot_interface", sa.String(length=255), nullable=True),
        sa.Column("console_interface", sa.String(length=255), nullable=True),
        sa.Column("deploy_interface", sa.String(length=255), nullable=True),
        sa.Column("inspect_interface", sa.String(length=255), nullable=True),
        sa.Column("management_interface", sa.String(length=255), nullable=True),
        sa.Column("network_interface", sa.String(length=255), nullable=True),
        sa.Column("power_interface", sa.String(length=255), nullable=True),
        sa.Column("raid_interface", sa.String(length=255), nullable=True),
        sa.Column("rescue_interface", sa.String(length=255), nullable=True),
        sa.Column("storage_interface", sa.String(length=255), nullable=True),
        sa.Column("vendor_interface", sa.String(length=255), nullable=True),
        sa.Column("provision_state", sa.String(length=32), nullable=True),
        sa.Column("target_provision_state", sa.String(length=32), nullable=True),
        sa.Column("provision_updated_at", _timestamp(), nullable=True),
        sa.Column("power_state", sa.String(length=32), nullable=True),
        sa.Column("target_power_state", sa.String(length=32), nullable=True),
        sa.Column("maintenance", sa.Boolean(), nullable=False),
        sa.Column("maintenance_reason", sa.Text(), nullable=True),
        sa.Column("fault", sa.String(length=255), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reservation", sa.String(length=255), nullable=True),
        sa.Column("conductor_affinity", sa.Integer(), nullable=True),
        sa.Column("conductor_group", sa.String(length=255), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=True),
        sa.Column("instance_info", sa.JSON(), nullable=True),
        sa.Column("instance_uuid", sa.String(length=36), nullable=True),
        sa.Column("driver_info", sa.JSON(), nullable=True),
        sa.Column("driver_internal_info", sa.JSON(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("resource_class", sa.String(length=80), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("lessee", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("automated_clean", sa.Boolean(), nullable=True),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("protected_reason", sa.Text(), nullable=True),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("retired_reason", sa.Text(), nullable=True),
        sa.Column("console_enabled", sa.Boolean(), nullable=False),
        sa.Column("inspection_started_at", _timestamp(), nullable=True),
        sa.Column("inspection_finished_at", _timestamp(), nullable=True),
        sa.Column("agent_token_hash", sa.String(length=255), nullable=True),
        sa.Column("last_heartbeat_at", _timestamp(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
        sa.UniqueConstraint("instance_uuid", name=op.f("uniq_nodes0instance_uuid")),
        sa.UniqueConstraint("name", name=op.f("uniq_nodes0name")),
        sa.UniqueConstraint("uuid", name=op.f("uniq_nodes0uuid")),
    )
    op.create_index(op.f("ix_nodes_provision_state"), "nodes", ["provision_state"], unique=False)
    op.create_index(op.f("ix_nodes_reservation"), "nodes", ["reservation"], unique=False)
    op.create_index(op.f("ix_nodes_system_uuid"), "nodes", ["system_uuid"], unique=False)

    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=15), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("resource_class", sa.String(length=80), nullable=True),
        sa.Column("candidate_nodes", sa.JSON(), nullable=True),
        sa.Column("traits", sa.JSON(), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("conductor_affinity", sa.Integer(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_allocations_node_id_nodes"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocations")),
        sa.UniqueConstraint("name", name=op.f("uniq_allocations0name")),
        sa.UniqueConstraint("uuid", name=op.f("uniq_allocations0uuid")),
    )
    op.create_index(op.f("ix_allocations_node_id"), "allocations", ["node_id"], unique=False)

    op.create_table(
        "node_inventory",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("inventory", sa.JSON(), nullable=True),
        sa.Column("plugin_data", sa.JSON(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_node_inventory_node_id_nodes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_node_inventory")),
    )
    op.create_table(
        "node_inventory_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("inventory", sa.JSON(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["nodes.id"],
            name=op.f("fk_node_inventory_history_node_id_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_inventory_history")),
    )
    op.create_index(
        op.f("ix_node_inventory_history_node_id"), "node_inventory_history", ["node_id"], unique=False
    )

    op.create_table(
        "node_traits",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("trait", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_node_traits_node_id_nodes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("node_id", "trait", name=op.f("pk_node_traits")),
    )
    op.create_table(
        "ports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("address", sa.String(length=18), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("pxe_enabled", sa.Boolean(), nullable=False),
        sa.Column("local_link_connection", sa.JSON(), nullable=True),
        sa.Column("physical_network", sa.String(length=64), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("is_smartnic", sa.Boolean(), nullable=False),
        sa.Column("portgroup_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_ports_node_id_nodes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ports")),
        sa.UniqueConstraint("address", name=op.f("uniq_ports0address")),
        sa.UniqueConstraint("name", name=op.f("uniq_ports0name")),
        sa.UniqueConstraint("uuid", name=op.f("uniq_ports0uuid")),
    )
    op.create_index(op.f("ix_ports_node_id"), "ports", ["node_id"], unique=False)


def downgrade() -> None:
    for table in (
        "ports",
        "node_traits",
        "node_inventory_history",
        "node_inventory",
        "allocations",
        "nodes",
        "conductors",
    ):
        op.drop_table(table)
