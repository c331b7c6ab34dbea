"""unique customer email

Revision ID: f3
Revises: f2
"""

import sqlalchemy as sa
from alembic import op

revision = "f3"
down_revision = "f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Fails on a tenant holding one address twice, whatever its case (bad data).
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        # MariaDB compares case-insensitively, and has no expression indexes.
        op.create_index("ux_customers_email", "customers", ["email"], unique=True)
    else:
        op.create_index(
            "ux_customers_email", "customers", [sa.text("lower(email)")], unique=True
        )


def downgrade() -> None:
    op.drop_index("ux_customers_email", table_name="customers")
