"""audit: audit orders

Revision ID: a2000000audit
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a2000000audit"
down_revision: str | Sequence[str] | None = "a1000000audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ["c3a00000core"]


def upgrade() -> None:
    op.create_table("t_a2000000audit", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("t_a2000000audit")
