"""create items

Revision ID: c2b0000000b1
Revises: None
"""

import sqlalchemy as sa
from alembic import op

revision = "c2b0000000b1"
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
