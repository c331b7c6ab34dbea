"""ABParts data model (SQLAlchemy 2, typed ``Mapped[...]`` style).

Conventions that keep migrations deterministic across SQLite and PostgreSQL:

* every constraint and index gets its name from ``NAMING_CONVENTION``;
* enums are ``sa.Enum(..., name=...)`` storing the *values* (which equal the
  member names): native ``CREATE TYPE`` on PostgreSQL, ``VARCHAR`` on SQLite;
* primary keys are ``sa.Uuid`` (native ``uuid`` on PostgreSQL, ``CHAR(32)`` on SQLite);
* quantities are ``Numeric(14, 3)``, money ``Numeric(12, 2)``.

Any change here needs a revision in ``alembic/versions`` (``alembic revision
--autogenerate -m "description_of_changes"``, then review it).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

QUANTITY = sa.Numeric(14, 3)
MONEY = sa.Numeric(12, 2)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _values(enum_cls: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in enum_cls]


def _enum(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    return sa.Enum(enum_cls, name=name, values_callable=_values)


class OrganizationType(enum.StrEnum):
    oraseas_ee = "oraseas_ee"
    bossaqua = "bossaqua"
    customer = "customer"
    supplier = "supplier"


class UserRole(enum.StrEnum):
    user = "user"
    admin = "admin"
    super_admin = "super_admin"  # added by revision e3a7c0d5f914


class UserStatus(enum.StrEnum):
    active = "active"
    inactive = "inactive"
    pending_invitation = "pending_invitation"
    locked = "locked"


class PartType(enum.StrEnum):
    consumable = "consumable"
    bulk_material = "bulk_material"


class TransactionType(enum.StrEnum):
    creation = "creation"
    transfer = "transfer"
    consumption = "consumption"
    adjustment = "adjustment"


class OrderStatus(enum.StrEnum):
    requested = "requested"
    pending = "pending"
    shipped = "shipped"
    received = "received"
    cancelled = "cancelled"


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, primary_key=True, default=uuid.uuid4, sort_order=-10
    )


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False, sort_order=10
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True),
        server_default=sa.func.now(),
        onupdate=sa.func.now(),
        nullable=False,
        sort_order=10,
    )


class Organization(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    organization_type: Mapped[OrganizationType] = mapped_column(
        _enum(OrganizationType, "organizationtype")
    )
    parent_organization_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("organizations.id")
    )
    address: Mapped[str | None] = mapped_column(sa.Text)
    contact_info: Mapped[str | None] = mapped_column(sa.Text)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())

    parent: Mapped[Organization | None] = relationship(remote_side="Organization.id")
    users: Mapped[list[User]] = relationship(back_populates="organization")
    warehouses: Mapped[list[Warehouse]] = relationship(back_populates="organization")


class User(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "users"

    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    username: Mapped[str] = mapped_column(sa.String(255), unique=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str | None] = mapped_column(sa.String(255))
    role: Mapped[UserRole] = mapped_column(_enum(UserRole, "userrole"))
    user_status: Mapped[UserStatus] = mapped_column(
        _enum(UserStatus, "userstatus"), server_default="active"
    )
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    last_login: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))

    organization: Mapped[Organization] = relationship(back_populates="users")


class Part(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "parts"

    part_number: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    part_type: Mapped[PartType] = mapped_column(_enum(PartType, "parttype"))
    is_proprietary: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    # Added nullable, backfilled, then made NOT NULL by revision 0b4d8f2c6e35.
    unit_of_measure: Mapped[str] = mapped_column(sa.String(50), default="pieces")
    manufacturer_part_number: Mapped[str | None] = mapped_column(sa.String(255))


class Warehouse(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "warehouses"
    __table_args__ = (sa.UniqueConstraint("organization_id", "name"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(sa.String(255))
    location: Mapped[str | None] = mapped_column(sa.String(255))
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())

    organization: Mapped[Organization] = relationship(back_populates="warehouses")


class Inventory(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "inventory"
    __table_args__ = (sa.UniqueConstraint("warehouse_id", "part_id"),)

    warehouse_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("warehouses.id"))
    part_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("parts.id"))
    current_stock: Mapped[Decimal] = mapped_column(QUANTITY, server_default="0")
    minimum_stock_recommendation: Mapped[Decimal] = mapped_column(QUANTITY, server_default="0")


class Machine(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "machines"

    customer_organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    model_type: Mapped[str] = mapped_column(sa.String(100))
    name: Mapped[str] = mapped_column(sa.String(255))
    serial_number: Mapped[str] = mapped_column(sa.String(255), unique=True)
    purchase_date: Mapped[dt.date | None] = mapped_column(sa.Date)


class Transaction(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "transactions"

    transaction_type: Mapped[TransactionType] = mapped_column(
        _enum(TransactionType, "transactiontype")
    )
    part_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("parts.id"))
    from_warehouse_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("warehouses.id"))
    to_warehouse_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("warehouses.id"))
    machine_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("machines.id"))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    performed_by_user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    # Indexed by revision a9f6e1b3d720 (stock reports filter on date ranges).
    transaction_date: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), index=True
    )
    reference_number: Mapped[str | None] = mapped_column(sa.String(100))
    notes: Mapped[str | None] = mapped_column(sa.Text)


class CustomerOrder(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "customer_orders"

    customer_organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    oraseas_organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    ordered_by_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    order_date: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    expected_delivery_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    actual_delivery_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus, "customerorderstatus"))
    notes: Mapped[str | None] = mapped_column(sa.Text)

    items: Mapped[list[CustomerOrderItem]] = relationship(
        back_populates="order", cascade="all, delete-orphan"
    )


class CustomerOrderItem(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "customer_order_items"

    customer_order_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("customer_orders.id", ondelete="CASCADE")
    )
    part_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("parts.id"))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    unit_price: Mapped[Decimal | None] = mapped_column(MONEY)

    order: Mapped[CustomerOrder] = relationship(back_populates="items")


class SupplierOrder(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "supplier_orders"

    ordering_organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    supplier_name: Mapped[str] = mapped_column(sa.String(255))
    order_date: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    expected_delivery_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    actual_delivery_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus, "supplierorderstatus"))
    notes: Mapped[str | None] = mapped_column(sa.Text)

    items: Mapped[list[SupplierOrderItem]] = relationship(
        back_populates="order", cascade="all, delete-orphan"
    )


class SupplierOrderItem(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "supplier_order_items"

    supplier_order_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("supplier_orders.id", ondelete="CASCADE")
    )
    part_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("parts.id"))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    unit_price: Mapped[Decimal | None] = mapped_column(MONEY)

    order: Mapped[SupplierOrder] = relationship(back_populates="items")


class StockAdjustment(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "stock_adjustments"

    warehouse_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("warehouses.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    adjustment_date: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    reason: Mapped[str] = mapped_column(sa.String(255))
    notes: Mapped[str | None] = mapped_column(sa.Text)

    items: Mapped[list[StockAdjustmentItem]] = relationship(
        back_populates="adjustment", cascade="all, delete-orphan"
    )


class StockAdjustmentItem(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "stock_adjustment_items"

    stock_adjustment_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("stock_adjustments.id", ondelete="CASCADE")
    )
    part_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("parts.id"))
    quantity_before: Mapped[Decimal] = mapped_column(QUANTITY)
    quantity_after: Mapped[Decimal] = mapped_column(QUANTITY)
    reason: Mapped[str | None] = mapped_column(sa.String(255))

    adjustment: Mapped[StockAdjustment] = relationship(back_populates="items")
