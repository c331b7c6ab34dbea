"""expand: add items sku

Revision ID: b300expand01
Revises: b3000000root
"""

import sqlalchemy as sa
from alembic import op

revision = "b300expand01"
down_revision = "b3000000root"
branch_labels = ("expand",)
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("sku", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("sku")
