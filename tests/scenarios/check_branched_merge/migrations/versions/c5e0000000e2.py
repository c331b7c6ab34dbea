"""branch one: add colour

Revision ID: c5e0000000e2
Revises: c5e0000000e1
"""

import sqlalchemy as sa
from alembic import op

revision = "c5e0000000e2"
down_revision = 'c5e0000000e1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("colour", sa.String(20)))
    op.create_index("ix_items_colour", "items", ["colour"])


def downgrade() -> None:
    op.drop_index("ix_items_colour", table_name="items")
    op.drop_column("items", "colour")
