"""create orders

Revision ID: c3000000good
Revises: None
"""

import sqlalchemy as sa
from alembic import op

revision = "c3000000good"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("orders", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("orders")
