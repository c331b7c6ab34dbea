"""add items sku (team A)

Revision ID: b200000left1
Revises: b2000000root
"""

import sqlalchemy as sa
from alembic import op

revision = "b200000left1"
down_revision = "b2000000root"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("sku", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("sku")
