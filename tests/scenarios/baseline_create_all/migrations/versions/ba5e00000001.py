"""add accounts.email (accounts comes from create_all, not from a revision)

Revision ID: ba5e00000001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "ba5e00000001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("email", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("email")
