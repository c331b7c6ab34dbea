"""audit: create audit log

Revision ID: a1000000audit
"""

import sqlalchemy as sa
from alembic import op

revision = "a1000000audit"
down_revision = None
branch_labels = "audit"
depends_on = "c2000000core"


def upgrade() -> None:
    op.create_table("t_a1000000audit", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("t_a1000000audit")
