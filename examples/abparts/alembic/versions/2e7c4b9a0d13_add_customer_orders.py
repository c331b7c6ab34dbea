"""add_customer_orders

Customer orders (customer organization -> Oraseas EE) and their items.
Developed on the "orders" branch in parallel with supplier orders; merged in
5d9b1e3f6a82.

Revision ID: 2e7c4b9a0d13
Revises: b6d1f8e2a947
Create Date: 2025-02-17 10:22:51.664019

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "2e7c4b9a0d13"
down_revision: Union[str, Sequence[str], None] = "b6d1f8e2a947"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "customer_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_organization_id", sa.Uuid(), nullable=False),
        sa.Column("oraseas_organization_id", sa.Uuid(), nullable=False),
        sa.Column("ordered_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("order_date", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expected_delivery_date", sa.Date(), nullable=True),
        sa.Column("actual_delivery_date", sa.Date(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "requested", "pending", "shipped", "received", "cancelled",
                name="customerorderstatus",
            ),
            nullable=False,
        ),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_organization_id"],
            ["organizations.id"],
            name=op.f("fk_customer_orders_customer_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["ordered_by_user_id"],
            ["users.id"],
            name=op.f("fk_customer_orders_ordered_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["oraseas_organization_id"],
            ["organizations.id"],
            name=op.f("fk_customer_orders_oraseas_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_orders")),
    )
    op.create_table(
        "customer_order_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_order_id", sa.Uuid(), nullable=False),
        sa.Column("part_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_order_id"],
            ["customer_orders.id"],
            name=op.f("fk_customer_order_items_customer_order_id_customer_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["part_id"], ["parts.id"], name=op.f("fk_customer_order_items_part_id_parts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_order_items")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("customer_order_items")
    op.drop_table("customer_orders")
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS customerorderstatus")
