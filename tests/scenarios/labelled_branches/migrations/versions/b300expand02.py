"""expand: create tags

Revision ID: b300expand02
Revises: b300expand01
"""

import sqlalchemy as sa
from alembic import op

revision = "b300expand02"
down_revision = "b300expand01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("tags")
