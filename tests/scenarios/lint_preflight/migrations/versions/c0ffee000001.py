"""create parts, customers and orders

Revision ID: c0ffee000001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "c0ffee000001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100)),
    )
    op.create_table(
        "parts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100)),
        sa.Column("code", sa.String(20)),
        sa.Column("qty", sa.Integer()),
        sa.Column("legacy", sa.Text()),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer_id", sa.Integer()),
    )
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"])


def downgrade():
    op.drop_table("orders")
    op.drop_table("parts")
    op.drop_table("customers")
