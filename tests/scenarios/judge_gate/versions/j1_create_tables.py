"""create customers, orders and legacy

Revision ID: j1
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "j1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50)),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer),
        sa.Column("qty", sa.Integer),
    )
    op.create_table(
        "legacy",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("note", sa.String(50)),
    )


def downgrade() -> None:
    op.drop_table("legacy")
    op.drop_table("orders")
    op.drop_table("customers")
