"""create items

Revision ID: c1a0000000a1
Revises: None
"""

import sqlalchemy as sa
from alembic import op

revision = "c1a0000000a1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("items")
