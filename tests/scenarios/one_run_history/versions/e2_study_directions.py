"""directions move to their own table, with the same enum

Revision ID: e2
Revises: e1
"""

import sqlalchemy as sa
from alembic import op

revision = "e2"
down_revision = "e1"
branch_labels = None
depends_on = None

# The same type name as e1's: created again only if this run did not create it already.
DIRECTION = sa.Enum("MINIMIZE", "MAXIMIZE", name="studydirection")


def upgrade() -> None:
    op.create_table(
        "study_directions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
        sa.Column("direction", DIRECTION, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("study_directions")
