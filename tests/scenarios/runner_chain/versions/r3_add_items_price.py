"""add items.price

Revision ID: r3
Revises: r2

Test hooks (environment variables): RUNNER_FAIL=<revision> makes that revision raise after
its first statement; RUNNER_SLEEP=<seconds> makes every revision pause after its DDL (so a
runner can be killed mid-revision).
"""
import os
import time

import sqlalchemy as sa
from alembic import op

revision = 'r3'
down_revision = 'r2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("price", sa.Integer))
    if os.environ.get("RUNNER_SLEEP") and not op.get_context().as_sql:
        time.sleep(float(os.environ["RUNNER_SLEEP"]))
    if os.environ.get("RUNNER_FAIL") == revision:
        raise RuntimeError("simulated failure in " + revision)


def downgrade() -> None:
    op.drop_column("items", "price")
