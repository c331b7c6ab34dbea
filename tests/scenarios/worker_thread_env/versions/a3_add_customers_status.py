"""add customers.status (NOT NULL, with a default for existing rows)

Revision ID: a3
Revises: a2
"""
import sqlalchemy as sa
from alembic import op

revision = 'a3'
down_revision = 'a2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
    )


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("status")
