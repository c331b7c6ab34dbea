"""create items with a price

Revision ID: c6f0000000f1
Revises: None
"""

import sqlalchemy as sa
from alembic import op

revision = "c6f0000000f1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("price", sa.Integer, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("items")
