"""add colour to items

Revision ID: c3c0000000c2
Revises: c3c0000000c1
"""

import sqlalchemy as sa
from alembic import op

revision = "c3c0000000c2"
down_revision = 'c3c0000000c1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("colour", sa.String(20)))


def downgrade() -> None:
    op.drop_column("items", "colour")
