"""create suppliers

Revision ID: c3c0000000c3
Revises: c3c0000000c1
"""

import sqlalchemy as sa
from alembic import op

revision = "c3c0000000c3"
down_revision = 'c3c0000000c1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("suppliers", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("suppliers")
