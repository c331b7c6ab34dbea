"""create orders

Revision ID: a2
Revises: a1
"""
import sqlalchemy as sa
from alembic import op

revision = 'a2'
down_revision = 'a1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("total", sa.Integer),
    )


def downgrade() -> None:
    op.drop_table("orders")
