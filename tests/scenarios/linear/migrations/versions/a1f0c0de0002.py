"""add accounts email

Revision ID: a1f0c0de0002
Revises: a1f0c0de0001
"""

import sqlalchemy as sa
from alembic import op

revision = "a1f0c0de0002"
down_revision = "a1f0c0de0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("email", sa.String(120)))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("email")
