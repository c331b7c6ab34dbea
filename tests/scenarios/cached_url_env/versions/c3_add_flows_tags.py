"""add flows.tags

Revision ID: c3
Revises: c2
"""
import sqlalchemy as sa
from alembic import op

revision = "c3"
down_revision = "c2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("flows", sa.Column("tags", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("flows") as batch:
        batch.drop_column("tags")
