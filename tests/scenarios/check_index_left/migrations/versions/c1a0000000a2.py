"""add sku with an index on name

Revision ID: c1a0000000a2
Revises: c1a0000000a1
"""

import sqlalchemy as sa
from alembic import op

revision = "c1a0000000a2"
down_revision = 'c1a0000000a1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("sku", sa.String(20), nullable=True))
    op.create_index("ix_items_name", "items", ["name"])


def downgrade() -> None:
    # Forgets op.drop_index("ix_items_name", table_name="items").
    op.drop_column("items", "sku")
