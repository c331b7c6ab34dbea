"""add orders.status

Revision ID: 0002_status
Revises: 0001_shop
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_status"
down_revision = "0001_shop"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("status", sa.String(20), nullable=False, server_default="new"))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("status")
