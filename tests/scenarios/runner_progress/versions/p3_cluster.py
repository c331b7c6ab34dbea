"""cluster parts: the rewrite rebuilds ix_parts_slow, which evaluates slow_true again

Revision ID: p3
Revises: p2
"""
from alembic import op

revision = "p3"
down_revision = "p2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CLUSTER parts USING parts_pkey")


def downgrade() -> None:
    pass
