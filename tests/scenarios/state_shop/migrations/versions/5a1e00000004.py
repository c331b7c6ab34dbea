"""order status, unique customer names

Three DDL statements: on MariaDB (no transactional DDL) a failure of the last one, e.g. on
duplicate customer names, leaves the first two applied.

Revision ID: 5a1e00000004
Revises: 5a1e00000003
"""

import sqlalchemy as sa
from alembic import op

revision = "5a1e00000004"
down_revision = "5a1e00000003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("status", sa.String(20), nullable=True))
    op.create_index("ix_orders_status", "orders", ["status"])
    with op.batch_alter_table("customers") as batch:
        batch.create_unique_constraint("uq_customers_name", ["name"])


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_constraint("uq_customers_name", type_="unique")
    op.drop_index("ix_orders_status", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("status")
