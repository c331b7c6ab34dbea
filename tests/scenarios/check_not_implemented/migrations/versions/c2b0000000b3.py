"""index prices by amount

Revision ID: c2b0000000b3
Revises: c2b0000000b2
"""

import sqlalchemy as sa
from alembic import op

revision = "c2b0000000b3"
down_revision = 'c2b0000000b2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_prices_amount", "prices", ["amount"])


def downgrade() -> None:
    op.drop_index("ix_prices_amount", table_name="prices")
