"""create prices

Revision ID: c2b0000000b2
Revises: c2b0000000b1
"""

import sqlalchemy as sa
from alembic import op

revision = "c2b0000000b2"
down_revision = 'c2b0000000b1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("amount", sa.Numeric(10, 2), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("prices cannot be undone")
