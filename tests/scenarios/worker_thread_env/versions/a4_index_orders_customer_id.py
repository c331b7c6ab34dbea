"""index orders.customer_id (CONCURRENTLY on PostgreSQL, in an autocommit block)

Revision ID: a4
Revises: a3
"""
from alembic import op

from abmigrate import ops

revision = 'a4'
down_revision = 'a3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.create_index_concurrently("ix_orders_customer_id", "orders", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_orders_customer_id", table_name="orders")
