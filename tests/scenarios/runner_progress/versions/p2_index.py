"""a partial index whose build evaluates slow_true on every row

Revision ID: p2
Revises: p1
"""
from abmigrate import ops

revision = "p2"
down_revision = "p1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.create_index_concurrently("ix_parts_slow", "parts", ["id"], where="slow_true(id)")


def downgrade() -> None:
    ops.drop_index_concurrently("ix_parts_slow", "parts")
