"""merge orders and invoices

Second paragraph of the message,
which history does not show.

Revision ID: c4000000core
"""

import sqlalchemy as sa
from alembic import op

revision = 'c4000000core'
down_revision = ('c3a00000core', 'c3b00000core')
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('t_merged', sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table('t_merged')
