"""create items and notes

Revision ID: b3000000root
Revises: None
"""

import sqlalchemy as sa
from alembic import op

revision = "b3000000root"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True))
    op.create_table("old_notes", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("old_notes")
    op.drop_table("items")
