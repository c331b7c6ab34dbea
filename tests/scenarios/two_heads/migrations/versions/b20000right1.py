"""create tags (team B)

Revision ID: b20000right1
Revises: b2000000root
"""

import sqlalchemy as sa
from alembic import op

revision = "b20000right1"
down_revision = "b2000000root"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("tags")
