"""add flag (slow when REHEARSE_SLEEP is set, to test interruption)

Revision ID: 7e0000000003
Revises: 7e0000000002
"""

import os

import sqlalchemy as sa
from alembic import op

revision = "7e0000000003"
down_revision = "7e0000000002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    seconds = float(os.environ.get("REHEARSE_SLEEP", "0"))
    if seconds and op.get_context().dialect.name == "postgresql":
        op.execute(f"SELECT pg_sleep({seconds})")
    op.add_column("items", sa.Column("flag", sa.Boolean, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("flag")
