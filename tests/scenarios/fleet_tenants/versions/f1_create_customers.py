"""create customers

Revision ID: f1
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "f1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(200), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("customers")
