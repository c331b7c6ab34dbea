"""branch two: create suppliers

Revision ID: c5e0000000e3
Revises: c5e0000000e1
"""

import sqlalchemy as sa
from alembic import op

revision = "c5e0000000e3"
down_revision = 'c5e0000000e1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppliers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False, unique=True),
    )


def downgrade() -> None:
    op.drop_table("suppliers")
