"""create invoices

Revision ID: f2
Revises: f1
"""

import os
import time

import sqlalchemy as sa
from alembic import op

revision = "f2"
down_revision = "f1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("total", sa.Numeric(10, 2), nullable=False),
    )
    # A slow revision on demand, so a test can stop a rollout in its middle.
    time.sleep(float(os.environ.get("FLEET_SLOW_REVISION_S", "0")))


def downgrade() -> None:
    op.drop_table("invoices")
