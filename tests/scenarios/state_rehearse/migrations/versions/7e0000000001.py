"""create items

Revision ID: 7e0000000001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "7e0000000001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.Column("note", sa.String(50), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("items")
