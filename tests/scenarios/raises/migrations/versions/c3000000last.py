"""create invoices

Revision ID: c3000000last
Revises: c30000000bad
"""

import sqlalchemy as sa
from alembic import op

revision = "c3000000last"
down_revision = "c30000000bad"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("invoices", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("invoices")
