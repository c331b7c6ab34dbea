"""index accounts email

Revision ID: a1f0c0de0003
Revises: a1f0c0de0002
"""

import sqlalchemy as sa
from alembic import op

revision = "a1f0c0de0003"
down_revision = "a1f0c0de0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_accounts_email", "accounts", ["email"])


def downgrade() -> None:
    op.drop_index("ix_accounts_email", table_name="accounts")
