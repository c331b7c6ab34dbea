"""merge branches

Revision ID: c5e0000000e4
Revises: c5e0000000e2, c5e0000000e3
"""

import sqlalchemy as sa
from alembic import op

revision = "c5e0000000e4"
down_revision = ('c5e0000000e2', 'c5e0000000e3')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
