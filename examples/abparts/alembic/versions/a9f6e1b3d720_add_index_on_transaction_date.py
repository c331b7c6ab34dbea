"""add_index_on_transaction_date

Stock reports filter transactions by date range and were doing sequential
scans. On PostgreSQL the index is built CONCURRENTLY (outside the migration's
transaction) so that writers to ``transactions`` are not blocked while it builds.

Revision ID: a9f6e1b3d720
Revises: 0b4d8f2c6e35
Create Date: 2025-04-02 17:03:55.771930

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "a9f6e1b3d720"
down_revision: Union[str, Sequence[str], None] = "0b4d8f2c6e35"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(
                op.f("ix_transactions_transaction_date"),
                "transactions",
                ["transaction_date"],
                unique=False,
                postgresql_concurrently=True,
            )
    else:
        op.create_index(
            op.f("ix_transactions_transaction_date"),
            "transactions",
            ["transaction_date"],
            unique=False,
        )


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(
                op.f("ix_transactions_transaction_date"),
                table_name="transactions",
                postgresql_concurrently=True,
            )
    else:
        op.drop_index(op.f("ix_transactions_transaction_date"), table_name="transactions")
