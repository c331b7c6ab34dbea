"""create items

Revision ID: b2000000root
Revises: None
"""

import sqlalchemy as sa
from alembic import op

revision = "b2000000root"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("items")
