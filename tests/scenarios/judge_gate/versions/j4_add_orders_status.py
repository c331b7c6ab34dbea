"""add orders.status, NOT NULL without default

Revision ID: j4
Revises: j3
"""
import sqlalchemy as sa
from alembic import op

revision = "j4"
down_revision = "j3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("status", sa.String(20), nullable=False))


def downgrade() -> None:
    op.drop_column("orders", "status")
