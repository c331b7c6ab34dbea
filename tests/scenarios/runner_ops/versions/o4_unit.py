"""backfill parts.unit in batches, then make it NOT NULL

Revision ID: o4
Revises: o3
"""
import sqlalchemy as sa
from alembic import op

from abmigrate import ops

revision = "o4"
down_revision = "o3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.backfill("parts", "unit = 'pcs'", where="unit IS NULL", batch_size=7)
    ops.set_not_null("parts", "unit", existing_type=sa.String(10))


def downgrade() -> None:
    with op.batch_alter_table("parts") as batch:
        batch.alter_column("unit", nullable=True, existing_type=sa.String(10))
