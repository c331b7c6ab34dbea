"""core: orders (left of the branch)

Revision ID: c3a00000core
"""

import sqlalchemy as sa
from alembic import op

revision = 'c3a00000core'
down_revision = 'c2000000core'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('t_c3a00000core', sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table('t_c3a00000core')
