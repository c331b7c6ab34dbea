"""widen qty, backfill note

ALTER COLUMN ... TYPE bigint rewrites the table on PostgreSQL; the UPDATE touches every row.

Revision ID: 7e0000000002
Revises: 7e0000000001
"""

import sqlalchemy as sa
from alembic import op

revision = "7e0000000002"
down_revision = "7e0000000001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.alter_column("qty", type_=sa.BigInteger, existing_nullable=False)
    op.execute("UPDATE items SET note = 'checked' WHERE note IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.alter_column("qty", type_=sa.Integer, existing_nullable=False)
