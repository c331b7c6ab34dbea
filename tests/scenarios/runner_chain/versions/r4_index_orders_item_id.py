"""index orders.item_id

Revision ID: r4
Revises: r3

Test hooks (environment variables): RUNNER_FAIL=<revision> makes that revision raise after
its first statement; RUNNER_SLEEP=<seconds> makes every revision pause after its DDL (so a
runner can be killed mid-revision).
"""
import os
import time

import sqlalchemy as sa
from alembic import op

from abmigrate import ops

revision = 'r4'
down_revision = 'r3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.create_index_concurrently("ix_orders_item_id", "orders", ["item_id"])
    if os.environ.get("RUNNER_SLEEP") and not op.get_context().as_sql:
        time.sleep(float(os.environ["RUNNER_SLEEP"]))
    if os.environ.get("RUNNER_FAIL") == revision:
        raise RuntimeError("simulated failure in " + revision)


def downgrade() -> None:
    op.drop_index("ix_orders_item_id", table_name="orders")
