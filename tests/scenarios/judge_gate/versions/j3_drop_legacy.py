"""drop the legacy table

Revision ID: j3
Revises: j2
"""
import sqlalchemy as sa
from alembic import op

revision = "j3"
down_revision = "j2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("legacy")


def downgrade() -> None:
    op.create_table(
        "legacy",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("note", sa.String(50)),
    )
