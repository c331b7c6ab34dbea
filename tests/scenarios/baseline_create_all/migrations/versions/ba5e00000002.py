"""create orders

Revision ID: ba5e00000002
Revises: ba5e00000001
"""

import sqlalchemy as sa
from alembic import op

revision = "ba5e00000002"
down_revision = "ba5e00000001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("accounts.id", name="fk_orders_account_id"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_table("orders")
