"""link items to suppliers

Revision ID: c5e0000000e5
Revises: c5e0000000e4
"""

import sqlalchemy as sa
from alembic import op

revision = "c5e0000000e5"
down_revision = 'c5e0000000e4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_suppliers",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("supplier_id", sa.Integer, sa.ForeignKey("suppliers.id"), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("item_suppliers")
