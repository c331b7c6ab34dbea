"""audit: depends on the core branch by label

Revision ID: a3000000audit
"""

import sqlalchemy as sa
from alembic import op

revision = "a3000000audit"
down_revision = "a2000000audit"
branch_labels = None
depends_on = ("core",)


def upgrade() -> None:
    op.create_table("t_a3000000audit", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("t_a3000000audit")
