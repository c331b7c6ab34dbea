"""update

Revision ID: c0ffee000003
Revises: c0ffee000002
"""
from alembic import op
import sqlalchemy as sa

revision = "c0ffee000003"
down_revision = "c0ffee000002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_parts_qty", "parts", ["qty"])  # abmigrate: ignore[AM101] reason: parts has 200 rows
    op.add_column("parts", sa.Column("note", sa.Text()))  # abmigrate: ignore[AM101] reason: stale


def downgrade():
    op.drop_column("parts", "note")
    op.drop_index("ix_parts_qty", table_name="parts")
