"""create notes

Revision ID: 7b0000000001
Revises: None
"""

import sqlalchemy as sa
from alembic import op

revision = "7b0000000001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("notes")
