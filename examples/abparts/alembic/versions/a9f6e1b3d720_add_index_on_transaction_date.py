"""add_index_on_transaction_date

Stock reports filter transactions by date range and were doing sequential
scans. The index is built with ``abmigrate.ops.create_index_concurrently``: on
PostgreSQL ``CREATE INDEX CONCURRENTLY`` outside the migration's transaction
(an autocommit block), so that writers to ``transactions`` are not blocked
while it builds, and a build that failed half way (leaving an INVALID index) is
dropped and redone when the revision runs again. On SQLite and MariaDB it is a
plain ``CREATE INDEX``. The downgrade drops it CONCURRENTLY for the same reason.

Revision ID: a9f6e1b3d720
Revises: 0b4d8f2c6e35
Create Date: 2025-04-02 17:03:55.771930

"""
from typing import Sequence, Union

from abmigrate import ops


# revision identifiers, used by Alembic.
revision: str = "a9f6e1b3d720"
down_revision: Union[str, Sequence[str], None] = "0b4d8f2c6e35"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # CONCURRENTLY (PostgreSQL): transactions is written constantly, a plain CREATE INDEX
    # would block every INSERT/UPDATE/DELETE on it until the build ends.
    ops.create_index_concurrently(
        "ix_transactions_transaction_date", "transactions", ["transaction_date"]
    )


def downgrade() -> None:
    """Downgrade schema."""
    # A plain DROP INDEX would wait for ACCESS EXCLUSIVE on transactions, queueing readers.
    ops.drop_index_concurrently("ix_transactions_transaction_date", "transactions")
