"""core: invoices (right of the branch)

Revision ID: c3b00000core
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c3b00000core'
down_revision: str | Sequence[str] | None = 'c2000000core'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('t_c3b00000core', sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table('t_c3b00000core')
