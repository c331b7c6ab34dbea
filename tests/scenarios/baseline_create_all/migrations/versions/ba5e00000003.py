"""index accounts.email

Revision ID: ba5e00000003
Revises: ba5e00000002
"""

from alembic import op

revision = "ba5e00000003"
down_revision = "ba5e00000002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_accounts_email", "accounts", ["email"])


def downgrade() -> None:
    op.drop_index("ix_accounts_email", table_name="accounts")
