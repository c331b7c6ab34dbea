"""create events

Revision ID: 6a0000000002
Revises: 6a0000000001
"""

import sqlalchemy as sa
from alembic import op

revision = "6a0000000002"
down_revision = "6a0000000001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("events")
