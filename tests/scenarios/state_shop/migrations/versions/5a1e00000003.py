"""add customer email

Revision ID: 5a1e00000003
Revises: 5a1e00000002
"""

import sqlalchemy as sa
from alembic import op

revision = "5a1e00000003"
down_revision = "5a1e00000002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("email", sa.String(255), nullable=True))
    op.create_index("ix_customers_email", "customers", ["email"])


def downgrade() -> None:
    op.drop_index("ix_customers_email", table_name="customers")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("email")
