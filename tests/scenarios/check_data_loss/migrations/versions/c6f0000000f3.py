"""add a note to items

Revision ID: c6f0000000f3
Revises: c6f0000000f2
"""

import sqlalchemy as sa
from alembic import op

revision = "c6f0000000f3"
down_revision = 'c6f0000000f2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("note", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("items", "note")
