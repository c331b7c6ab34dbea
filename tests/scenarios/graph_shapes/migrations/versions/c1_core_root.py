"""core: create accounts

Revision ID: c1000000core
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = 'c1000000core'
down_revision = None
branch_labels = ('core',)
depends_on = None


def upgrade() -> None:
    op.create_table('t_c1000000core', sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table('t_c1000000core')
