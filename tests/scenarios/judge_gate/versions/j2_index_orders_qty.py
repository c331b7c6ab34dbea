"""index orders.qty without CONCURRENTLY

Revision ID: j2
Revises: j1
"""
from alembic import op

revision = "j2"
down_revision = "j1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_orders_qty", "orders", ["qty"])


def downgrade() -> None:
    op.drop_index("ix_orders_qty", table_name="orders")
