"""create studies with a direction enum

Revision ID: e1
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "e1"
down_revision = None
branch_labels = None
depends_on = None

DIRECTION = sa.Enum("MINIMIZE", "MAXIMIZE", name="studydirection")


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("direction", DIRECTION, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("studies")
    DIRECTION.drop(op.get_bind(), checkfirst=True)
