"""create orders

Revision ID: 5a1e00000002
Revises: 5a1e00000001
"""

import sqlalchemy as sa
from alembic import op

revision = "5a1e00000002"
down_revision = "5a1e00000001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "customer_id",
            sa.Integer,
            sa.ForeignKey("customers.id", name="fk_orders_customer_id"),
            nullable=False,
        ),
        sa.Column("total", sa.Numeric(10, 2), nullable=False, server_default="0"),
    )
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_orders_customer_id", table_name="orders")
    op.drop_table("orders")
