"""index parts.name without blocking writers

Revision ID: o2
Revises: o1
"""
from alembic import op

from abmigrate import ops

revision = "o2"
down_revision = "o1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.create_index_concurrently("ix_parts_name", "parts", ["name"])


def downgrade() -> None:
    ops.drop_index_concurrently("ix_parts_name", "parts")
