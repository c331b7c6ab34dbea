"""create customers and orders

Revision ID: 0001_shop
Revises:
"""
import datetime
import decimal

import sqlalchemy as sa
from alembic import op

revision = "0001_shop"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    customers = op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(200)),
        sa.Column("balance", sa.Numeric(12, 2)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("joined", sa.DateTime),
        sa.Column("photo", sa.LargeBinary),
        sa.Column("score", sa.Float),
        sa.Column("prefs", sa.JSON),  # json has no hash function in PostgreSQL
    )
    orders = op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("quantity", sa.Integer, nullable=False),
    )
    op.create_index("ix_orders_customer", "orders", ["customer_id"])
    op.bulk_insert(
        customers,
        [
            {
                "id": i,
                "name": f"Customer {i} ‘ünïcode’",
                "email": None if i % 5 == 0 else f"c{i}@example.com",
                "balance": decimal.Decimal(i * 7) / 3 if i % 4 else None,
                "active": i % 2 == 0,
                "joined": datetime.datetime(2024, 1, 1, 12, 0) + datetime.timedelta(hours=i),
                "photo": bytes([i % 256, 0, 255, 10]) * 3,
                "score": i / 8,
                "prefs": {"newsletter": i % 2 == 1, "tags": [i, "x"]} if i % 6 else None,
            }
            for i in range(1, 41)
        ],
    )
    op.bulk_insert(
        orders,
        [
            {"id": i, "customer_id": 1 + i % 40, "note": "line\nbreak, tab\t'quote'" if i % 3 == 0 else None, "quantity": i}
            for i in range(1, 121)
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_orders_customer", "orders")
    op.drop_table("orders")
    op.drop_table("customers")
