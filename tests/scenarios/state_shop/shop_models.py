"""The models the state_shop migrations arrive at (head = 5a1e00000004)."""

import sqlalchemy as sa

metadata = sa.MetaData()

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("email", sa.String(255), nullable=True),
    sa.Index("ix_customers_email", "email"),
    sa.UniqueConstraint("name", name="uq_customers_name"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "customer_id",
        sa.Integer,
        sa.ForeignKey("customers.id", name="fk_orders_customer_id"),
        nullable=False,
    ),
    sa.Column("total", sa.Numeric(10, 2), nullable=False, server_default="0"),
    sa.Column("status", sa.String(20), nullable=True),
    sa.Index("ix_orders_customer_id", "customer_id"),
    sa.Index("ix_orders_status", "status"),
)
