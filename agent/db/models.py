"""SQLAlchemy models of Kiln's database: nodes, ports, portgroups, inventories, conductors, allocations,
chassis, volume connectors and targets, and deploy templates."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from agent.common import interfaces

# Explicit names let alembic compare and alter constraints the same way on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uniq_%(table_name)s0%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime.datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.datetime.now(datetime.UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as naive UTC and read back as an aware UTC datetime.

    SQLite and MySQL keep no time zone, so every value is converted to UTC on the way in.
    MySQL gets microsecond precision (DATETIME(6)) so heartbeats and reservations order correctly.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        """Pick DATETIME(6) on MySQL/MariaDB, a plain DateTime elsewhere."""
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        """Convert an aware value to naive UTC; a naive value is taken to be UTC already."""
        if value is None:
            return None
        if not isinstance(value, datetime.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        """Attach UTC to the naive value read from the database."""
        if value is None:
            return None
        return value.replace(tzinfo=datetime.UTC)


class Base(DeclarativeBase):
    """Declarative base with the shared naming convention and a dict export."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def as_dict(self) -> dict[str, Any]:
        """Return the row's column values as a plain dict."""
        return {c.key: getattr(self, c.key) for c in self.__table__.columns}


class TimestampMixin:
    """created_at on insert, updated_at on every update."""

    created_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime(), onupdate=utcnow)


# The node's <name>_interface columns.
INTERFACES = interfaces.NODE_INTERFACES


class Node(TimestampMixin, Base):
    """A bare-metal node, with Ironic's fields."""

    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    name: Mapped[str | None] = mapped_column(String(255), unique=True)
    system_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    driver: Mapped[str] = mapped_column(String(255), nullable=False)
    bios_interface: Mapped[str | None] = mapped_column(String(255))
    boot_interface: Mapped[str | None] = mapped_column(String(255))
    console_interface: Mapped[str | None] = mapped_column(String(255))
    deploy_interface: Mapped[str | None] = mapped_column(String(255))
    inspect_interface: Mapped[str | None] = mapped_column(String(255))
    management_interface: Mapped[str | None] = mapped_column(String(255))
    network_interface: Mapped[str | None] = mapped_column(String(255))
    power_interface: Mapped[str | None] = mapped_column(String(255))
    raid_interface: Mapped[str | None] = mapped_column(String(255))
    rescue_interface: Mapped[str | None] = mapped_column(String(255))
    storage_interface: Mapped[str | None] = mapped_column(String(255))
    vendor_interface: Mapped[str | None] = mapped_column(String(255))
    provision_state: Mapped[str | None] = mapped_column(String(32), index=True)
    target_provision_state: Mapped[str | None] = mapped_column(String(32))
    provision_updated_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime())
    power_state: Mapped[str | None] = mapped_column(String(32))
    target_power_state: Mapped[str | None] = mapped_column(String(32))
    maintenance: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    maintenance_reason: Mapped[str | None] = mapped_column(Text)
    fault: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    reservation: Mapped[str | None] = mapped_column(String(255), index=True)
    conductor_affinity: Mapped[int | None] = mapped_column(Integer)
    conductor_group: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    properties: Mapped[dict | None] = mapped_column(JSON, default=dict)
    instance_info: Mapped[dict | None] = mapped_column(JSON, default=dict)
    instance_uuid: Mapped[str | None] = mapped_column(String(36), unique=True)
    driver_info: Mapped[dict | None] = mapped_column(JSON, default=dict)
    driver_internal_info: Mapped[dict | None] = mapped_column(JSON, default=dict)
    extra: Mapped[dict | None] = mapped_column(JSON, default=dict)
    resource_class: Mapped[str | None] = mapped_column(String(80))
    owner: Mapped[str | None] = mapped_column(String(255))
    lessee: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    automated_clean: Mapped[bool | None] = mapped_column(Boolean)
    protected: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    protected_reason: Mapped[str | None] = mapped_column(Text)
    retired: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    retired_reason: Mapped[str | None] = mapped_column(Text)
    console_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    inspection_started_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime())
    inspection_finished_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime())
    agent_token_hash: Mapped[str | None] = mapped_column(String(255))
    last_heartbeat_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime())
    chassis_id: Mapped[int | None] = mapped_column(ForeignKey("chassis.id"), index=True)
    instance_name: Mapped[str | None] = mapped_column(String(255), index=True)
    shard: Mapped[str | None] = mapped_column(String(255), index=True)
    firmware_interface: Mapped[str | None] = mapped_column(String(255))
    raid_config: Mapped[dict | None] = mapped_column(JSON, default=dict)
    target_raid_config: Mapped[dict | None] = mapped_column(JSON, default=dict)
    health: Mapped[str | None] = mapped_column(String(255))

    trait_rows: Mapped[list[NodeTrait]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="NodeTrait.trait"
    )

    @property
    def traits(self) -> list[str]:
        """The node's traits as a sorted list of strings."""
        return [t.trait for t in self.trait_rows]

    def as_dict(self) -> dict[str, Any]:
        """Return the node's columns and its traits as a plain dict."""
        values = super().as_dict()
        values["traits"] = self.traits
        return values

    def __repr__(self) -> str:
        return f"<Node {self.uuid} name={self.name!r} state={self.provision_state!r}>"


class NodeTrait(Base):
    """One trait (e.g. CUSTOM_GPU_COUNT_8) of one node."""

    __tablename__ = "node_traits"

    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True)
    trait: Mapped[str] = mapped_column(String(255), primary_key=True)


class Port(TimestampMixin, Base):
    """A NIC of a node, identified by its MAC address."""

    __tablename__ = "ports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    address: Mapped[str] = mapped_column(String(18), nullable=False, unique=True)
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(255), unique=True)
    pxe_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    local_link_connection: Mapped[dict | None] = mapped_column(JSON, default=dict)
    physical_network: Mapped[str | None] = mapped_column(String(64))
    extra: Mapped[dict | None] = mapped_column(JSON, default=dict)
    is_smartnic: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    portgroup_id: Mapped[int | None] = mapped_column(Integer)
    internal_info: Mapped[dict | None] = mapped_column(JSON, default=dict)

    def __repr__(self) -> str:
        return f"<Port {self.uuid} address={self.address} node_id={self.node_id}>"


class Portgroup(TimestampMixin, Base):
    """Ports of a node bonded together (Ironic's portgroup): a LAG on the switch, a bond on the host."""

    __tablename__ = "portgroups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    name: Mapped[str | None] = mapped_column(String(255), unique=True)
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    address: Mapped[str | None] = mapped_column(String(18), unique=True)
    extra: Mapped[dict | None] = mapped_column(JSON, default=dict)
    internal_info: Mapped[dict | None] = mapped_column(JSON, default=dict)
    standalone_ports_supported: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    mode: Mapped[str | None] = mapped_column(String(255))
    properties: Mapped[dict | None] = mapped_column(JSON, default=dict)

    def __repr__(self) -> str:
        return f"<Portgroup {self.uuid} address={self.address} node_id={self.node_id}>"


class NodeInventory(Base):
    """The current hardware inventory of a node (one row per node)."""

    __tablename__ = "node_inventory"

    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True)
    inventory: Mapped[dict | None] = mapped_column(JSON)
    plugin_data: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime(), default=utcnow)


class NodeInventoryHistory(Base):
    """An earlier inventory of a node and what changed from the one before it."""

    __tablename__ = "node_inventory_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node_id: Mapped[int] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False, index=True
    )
    inventory: Mapped[dict | None] = mapped_column(JSON)
    changes: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime(), default=utcnow)


class NodeHistory(TimestampMixin, Base):
    """One event in a node's history (Ironic's node_history): an error, a fault, an inventory."""

    __tablename__ = "node_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    node_id: Mapped[int] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False, index=True
    )
    conductor: Mapped[str | None] = mapped_column(String(255))
    event_type: Mapped[str | None] = mapped_column(String(255))
    severity: Mapped[str | None] = mapped_column(String(255))
    event: Mapped[str | None] = mapped_column(Text)
    user: Mapped[str | None] = mapped_column(String(64))
    project: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str | None] = mapped_column(String(32))
    target_provision_state: Mapped[str | None] = mapped_column(String(32))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)


class BIOSSetting(TimestampMixin, Base):
    """One BIOS setting of a node as its BMC last reported it, with the registry's facts (Ironic's)."""

    __tablename__ = "bios_settings"

    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    attribute_type: Mapped[str | None] = mapped_column(String(255))
    allowable_values: Mapped[list | None] = mapped_column(JSON)
    lower_bound: Mapped[int | None] = mapped_column(Integer)
    max_length: Mapped[int | None] = mapped_column(Integer)
    min_length: Mapped[int | None] = mapped_column(Integer)
    read_only: Mapped[bool | None] = mapped_column(Boolean)
    reset_required: Mapped[bool | None] = mapped_column(Boolean)
    unique: Mapped[bool | None] = mapped_column(Boolean)
    upper_bound: Mapped[int | None] = mapped_column(Integer)


class FirmwareComponent(TimestampMixin, Base):
    """One firmware component of a node (bios, bmc, ...) and its versions (Ironic's firmware_information)."""

    __tablename__ = "firmware_information"
    __table_args__ = (UniqueConstraint("node_id", "component"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False)
    component: Mapped[str] = mapped_column(String(255), nullable=False)
    initial_version: Mapped[str] = mapped_column(String(255), nullable=False)
    current_version: Mapped[str | None] = mapped_column(String(255))
    last_version_flashed: Mapped[str | None] = mapped_column(String(255))


class TurnoverRecord(Base):
    """A signed record of one cleaning: what was erased and how, kept after the node is gone."""

    __tablename__ = "turnover_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    # no foreign key: the evidence outlives the node it speaks of
    node_uuid: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    record: Mapped[str] = mapped_column(Text().with_variant(mysql.MEDIUMTEXT(), "mysql"), nullable=False)
    signature: Mapped[str] = mapped_column(String(255), nullable=False)  # base64 ed25519
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)  # sha256 of the raw public key
    created_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime(), default=utcnow)


class Conductor(TimestampMixin, Base):
    """A conductor service; updated_at is its last heartbeat."""

    __tablename__ = "conductors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hostname: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    online: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    drivers: Mapped[list | None] = mapped_column(JSON, default=list)
    conductor_group: Mapped[str] = mapped_column(String(255), nullable=False, default="")

    def __repr__(self) -> str:
        return f"<Conductor {self.hostname} online={self.online}>"


class Allocation(TimestampMixin, Base):
    """A request to allocate a node matching a resource class and traits."""

    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    name: Mapped[str | None] = mapped_column(String(255), unique=True)
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"), index=True)
    state: Mapped[str] = mapped_column(String(15), nullable=False, default="allocating")
    last_error: Mapped[str | None] = mapped_column(Text)
    resource_class: Mapped[str | None] = mapped_column(String(80))
    candidate_nodes: Mapped[list | None] = mapped_column(JSON, default=list)
    traits: Mapped[list | None] = mapped_column(JSON, default=list)
    owner: Mapped[str | None] = mapped_column(String(255))
    extra: Mapped[dict | None] = mapped_column(JSON, default=dict)
    conductor_affinity: Mapped[int | None] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"<Allocation {self.uuid} state={self.state!r} node_id={self.node_id}>"


class Chassis(TimestampMixin, Base):
    """A group of nodes (Ironic's chassis): a description and extra, nothing more."""

    __tablename__ = "chassis"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    description: Mapped[str | None] = mapped_column(String(255))
    extra: Mapped[dict | None] = mapped_column(JSON, default=dict)


class VolumeConnector(TimestampMixin, Base):
    """How a node connects to remote storage: an iSCSI initiator IQN, a WWPN, an IP, ..."""

    __tablename__ = "volume_connectors"
    __table_args__ = (
        UniqueConstraint("type", "connector_id", name="uniq_volume_connectors0type0connector_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    connector_id: Mapped[str] = mapped_column(String(255), nullable=False)
    extra: Mapped[dict | None] = mapped_column(JSON, default=dict)


class VolumeTarget(TimestampMixin, Base):
    """A remote volume a node uses (boot_index 0 boots from it)."""

    __tablename__ = "volume_targets"
    __table_args__ = (
        UniqueConstraint("node_id", "boot_index", name="uniq_volume_targets0node_id0boot_index"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    volume_type: Mapped[str] = mapped_column(String(64), nullable=False)
    properties: Mapped[dict | None] = mapped_column(JSON, default=dict)
    boot_index: Mapped[int] = mapped_column(Integer, nullable=False)
    volume_id: Mapped[str] = mapped_column(String(36), nullable=False)
    extra: Mapped[dict | None] = mapped_column(JSON, default=dict)


class DeployTemplate(TimestampMixin, Base):
    """Deploy steps a node runs when the instance asks for the trait that is the template's name."""

    __tablename__ = "deploy_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    steps: Mapped[list | None] = mapped_column(JSON, default=list)
    extra: Mapped[dict | None] = mapped_column(JSON, default=dict)


class Runbook(TimestampMixin, Base):
    """Named steps run on a manageable node (as cleaning) or an active one (as servicing)."""

    __tablename__ = "runbooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    steps: Mapped[list | None] = mapped_column(JSON, default=list)
    traits: Mapped[list | None] = mapped_column(JSON, default=list)
    disable_ramdisk: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    public: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    owner: Mapped[str | None] = mapped_column(String(255))
    extra: Mapped[dict | None] = mapped_column(JSON, default=dict)


class InspectionRule(TimestampMixin, Base):
    """Conditions on a stored inventory and the actions taken on the node when they hold."""

    __tablename__ = "inspection_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    sensitive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    phase: Mapped[str] = mapped_column(String(16), nullable=False, default="main")
    conditions: Mapped[list | None] = mapped_column(JSON, default=list)
    actions: Mapped[list | None] = mapped_column(JSON, default=list)
