"""unique customer email

Revision ID: f3
Revises: f2
"""

from alembic import op

revision = "f3"
down_revision = "f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Fails on a tenant holding the same email twice (bad data).
    op.create_index("ux_customers_email", "customers", ["email"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_customers_email", table_name="customers")
