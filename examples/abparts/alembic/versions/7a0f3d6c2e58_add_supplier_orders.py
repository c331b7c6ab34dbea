"""add_supplier_orders

Orders placed by Oraseas EE (or a customer) with external suppliers, and their
items. Developed on the "procurement" branch in parallel with customer orders;
merged in 5d9b1e3f6a82.

Revision ID: 7a0f3d6c2e58
Revises: b6d1f8e2a947
Create Date: 2025-02-18 16:47:09.120448

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "7a0f3d6c2e58"
down_revision: Union[str, Sequence[str], None] = "b6d1f8e2a947"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "supplier_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ordering_organization_id", sa.Uuid(), nullable=False),
        sa.Column("supplier_name", sa.String(length=255), nullable=False),
        sa.Column("order_date", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expected_delivery_date", sa.Date(), nullable=True),
        sa.Column("actual_delivery_date", sa.Date(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "requested", "pending", "shipped", "received", "cancelled",
                name="supplierorderstatus",
            ),
            nullable=False,
        ),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ordering_organization_id"],
            ["organizations.id"],
            name=op.f("fk_supplier_orders_ordering_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplier_orders")),
    )
    op.create_table(
        "supplier_order_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("supplier_order_id", sa.Uuid(), nullable=False),
        sa.Column("part_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["part_id"], ["parts.id"], name=op.f("fk_supplier_order_items_part_id_parts")
        ),
        sa.ForeignKeyConstraint(
            ["supplier_order_id"],
            ["supplier_orders.id"],
            name=op.f("fk_supplier_order_items_supplier_order_id_supplier_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplier_order_items")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("supplier_order_items")
    op.drop_table("supplier_orders")
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS supplierorderstatus")
