"""add orders total, then fail

Revision ID: c30000000bad
Revises: c3000000good
"""

import sqlalchemy as sa
from alembic import op

revision = "c30000000bad"
down_revision = "c3000000good"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("order_notes", sa.Column("id", sa.Integer, primary_key=True))
    raise RuntimeError("data conflict: 3 orders have no customer")


def downgrade() -> None:
    op.drop_table("order_notes")
