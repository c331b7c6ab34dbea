"""create orders

Revision ID: c1a0000000a3
Revises: c1a0000000a2
"""

import sqlalchemy as sa
from alembic import op

revision = "c1a0000000a3"
down_revision = 'c1a0000000a2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("orders")
