"""core: create users

Revision ID: c2000000core
Revises: c1000000core
"""

import sqlalchemy as sa
from alembic import op

revision = 'c2000000core'
down_revision = 'c1000000core'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('t_c2000000core', sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table('t_c2000000core')
