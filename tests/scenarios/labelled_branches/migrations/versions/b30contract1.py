"""contract: drop old notes

Revision ID: b30contract1
Revises: b3000000root
"""

import sqlalchemy as sa
from alembic import op

revision = "b30contract1"
down_revision = "b3000000root"
branch_labels = "contract"
depends_on = None


def upgrade() -> None:
    # abmigrate: ignore[AM201] reason: the expand branch stopped using old_notes
    op.drop_table("old_notes")


def downgrade() -> None:
    op.create_table("old_notes", sa.Column("id", sa.Integer, primary_key=True))
