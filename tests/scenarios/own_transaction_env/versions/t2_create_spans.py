"""create spans (identity primary key, foreign key, index)

Revision ID: t2
Revises: t1
"""
import sqlalchemy as sa
from alembic import op

revision = "t2"
down_revision = "t1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spans",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_index("ix_spans_project_id", "spans", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_spans_project_id", table_name="spans")
    op.drop_table("spans")
